//! One software TPM per test: a swtpm process on a private loopback port pair, with EK certificates issued by a throwaway CA.
//!
//! # How the ports are made race-free
//!
//! The harness binds both loopback listeners itself (data port `N`, control
//! port `N + 1`: libtss2's swtpm TCTI always derives the control port as
//! `port + 1`) and hands the listening sockets to swtpm as inherited file
//! descriptors. Nothing is ever closed and re-bound between choosing a port and
//! serving on it, and a client may connect the moment [`Swtpm::start`] returns:
//! the kernel queues it on the listener until swtpm accepts.
//!
//! swtpm 0.7.1's option names are misleading here, which is why the two channels
//! are passed differently:
//! - `--ctrl type=tcp,fd=X` takes a *listening* socket and accepts on it.
//! - `--server type=tcp,fd=X` takes an already *connected* socket, serves that
//!   one client and exits when it hangs up (swtpm sets `SERVER_FLAG_FD_GIVEN`,
//!   hence `MAIN_LOOP_FLAG_USE_FD | MAIN_LOOP_FLAG_TERMINATE`). A listener
//!   passed this way makes every client hang.
//! - `--server type=unixio,fd=X` takes a *listening* socket and only checks that
//!   it is a socket, not its address family; the main loop's accept/read/write
//!   are family-agnostic. So the TCP data listener goes in as `type=unixio`.
//!
//! The parent closes its copies of the listeners once swtpm has them. When
//! swtpm dies the ports therefore close with it, and clients fail at once with
//! "connection refused" instead of waiting on a listener nobody serves.
//! [`Swtpm::restart`] binds the same two ports again (`SO_REUSEADDR`, which std
//! sets on every `TcpListener`).
//!
//! # Where files go
//!
//! Everything lives in two temp dirs: the TPM's (NV state, swtpm's log and
//! stderr, `swtpm_setup`'s log and its own temp files via `TMPDIR`) and the CA's
//! (root and intermediate keys and certs, serial counter, lock file).
//! `swtpm_localca` only touches `/var/lib/swtpm-localca` when it is run with
//! the system config; it is always given one of ours, whose `statedir` (where
//! it also keeps its `.lock.swtpm-localca`) is the CA's temp dir.

use std::fmt::Display;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

/// Name `swtpm_localca` gives the self-signed root it creates on first use.
const ROOT_CERT_FILE: &str = "swtpm-localca-rootca-cert.pem";
/// The intermediate (`issuercert` in its config) that signs the EK certificates.
const INTERMEDIATE_CERT_FILE: &str = "issuercert.pem";

/// How many random port pairs to try before giving up; a collision needs
/// another process to hold exactly `N + 1`, so a handful of tries is plenty.
const PORT_PAIR_ATTEMPTS: usize = 64;

/// Safety net for the start-up probe: swtpm answers in milliseconds, but a
/// wedged process must fail the test rather than hang it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// swtpm control-channel command `CMD_GET_CAPABILITY`; the answer is a 64-bit
/// capability mask.
const CMD_GET_CAPABILITY: u32 = 1;

/// How much of a log goes into an error message.
const LOG_TAIL_BYTES: u64 = 2048;

/// The public point swtpm_localca is asked to certify once, so that it creates
/// the root and intermediate up front: the generator of P-384, a valid point
/// that nobody will ever present as a real EK.
const BOOTSTRAP_EK: &str = "x=aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7,\
y=3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f,\
id=secp384r1";

/// A throwaway EK-certificate CA: `swtpm_localca`'s root and intermediate in a
/// temp dir, removed on drop.
///
/// Share one between several [`Swtpm`]s (through [`SwtpmOptions::ca`]) when a
/// test needs several TPMs whose EK certificates chain to the same root, e.g. a
/// fleet behind one issuer. `swtpm_localca` serialises concurrent use with a
/// lock file in the CA's own dir.
#[derive(Debug)]
pub struct TestCa {
    dir: TempDir,
    localca_conf: PathBuf,
    localca_options: PathBuf,
}

impl TestCa {
    /// Creates the CA: writes its `swtpm_localca` config and runs
    /// `swtpm_localca` once so the root and intermediate exist on return
    /// (≈ 0.3–0.5 s on the 2-core CI machine, mostly RSA key generation).
    pub fn new() -> io::Result<TestCa> {
        let dir = tempfile::Builder::new()
            .prefix("attestd-testca-")
            .tempdir()
            .map_err(|e| context(e, "cannot create the test CA's temp dir"))?;
        let root = dir.path();
        let localca_conf = root.join("localca.conf");
        let localca_options = root.join("localca.options");

        // Paths are written verbatim into swtpm's `key = value` config files,
        // which have no quoting.
        check_config_safe(root)?;
        write_file(
            &localca_conf,
            &format!(
                "statedir = {dir}\n\
                 signingkey = {dir}/signkey.pem\n\
                 issuercert = {dir}/{INTERMEDIATE_CERT_FILE}\n\
                 certserial = {dir}/certserial\n",
                dir = root.display()
            ),
        )?;
        // Only used for platform certificates, but swtpm_setup insists on it
        // being configured.
        write_file(
            &localca_options,
            "--platform-manufacturer attestd-tests\n\
             --platform-version 1.0\n\
             --platform-model swtpm\n",
        )?;

        let ca = TestCa {
            dir,
            localca_conf,
            localca_options,
        };
        ca.bootstrap()?;
        Ok(ca)
    }

    /// The self-signed root certificate (PEM): the trust anchor an issuer
    /// would be configured with.
    pub fn root_cert_pem(&self) -> PathBuf {
        self.dir.path().join(ROOT_CERT_FILE)
    }

    /// The intermediate certificate (PEM) that signs the EK certificates;
    /// an EK chain is `EK cert → intermediate → root`.
    pub fn intermediate_cert_pem(&self) -> PathBuf {
        self.dir.path().join(INTERMEDIATE_CERT_FILE)
    }

    /// Has `swtpm_localca` certify a dummy EK so it creates the root and
    /// intermediate now instead of inside the first `swtpm_setup`.
    fn bootstrap(&self) -> io::Result<()> {
        let scratch = self.dir.path().join("bootstrap");
        fs::create_dir(&scratch).map_err(|e| context(e, "cannot create the CA bootstrap dir"))?;
        let log = self.dir.path().join("localca.log");
        let localca = find_program("swtpm_localca")?;
        let output = Command::new(&localca)
            .args(["--type", "ek", "--ek", BOOTSTRAP_EK, "--dir"])
            .arg(&scratch)
            .arg("--logfile")
            .arg(&log)
            .args([
                "--tpm-spec-family",
                "2.0",
                "--tpm-spec-level",
                "0",
                "--tpm-spec-revision",
                "164",
                "--tpm-manufacturer",
                "id:00001014",
                "--tpm-model",
                "swtpm",
                "--tpm-version",
                "id:20191023",
                "--tpm2",
                "--configfile",
            ])
            .arg(&self.localca_conf)
            .arg("--optsfile")
            .arg(&self.localca_options)
            .env("TMPDIR", self.dir.path())
            // A password here would protect the root key and nothing else
            // needs one: keep a developer's setting out of the tests.
            .env_remove("SWTPM_ROOTCA_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| context(e, format!("cannot run {}", localca.display())))?;
        let made_both = self.root_cert_pem().is_file() && self.intermediate_cert_pem().is_file();
        if !output.status.success() || !made_both {
            return Err(io::Error::other(format!(
                "swtpm_localca failed to create the test CA ({}){}{}",
                output.status,
                section("output", &String::from_utf8_lossy(&output.stderr)),
                section("localca.log", &tail(&log)),
            )));
        }
        // The dummy EK certificate has served its purpose.
        let _ = fs::remove_dir_all(&scratch);
        Ok(())
    }
}

/// How to manufacture a [`Swtpm`]. `SwtpmOptions::default()` is what
/// [`Swtpm::start`] uses.
#[derive(Debug, Clone)]
pub struct SwtpmOptions {
    /// Create the RSA-2048 and ECC P-384 EKs (persisted at `0x81010001` and
    /// `0x81010016`) and their certificates (NV `0x01c00002` and `0x01c00016`),
    /// issued by [`SwtpmOptions::ca`]. swtpm_setup makes no P-256 EK
    /// certificate. Default `true`; `false` leaves no persistent EK and no
    /// certificate (an EK can still be created from the TCG template).
    pub ek_certs: bool,
    /// PCR banks to activate, e.g. `["sha1", "sha256"]`; the others are
    /// deallocated. Default `["sha256"]`.
    pub pcr_banks: Vec<String>,
    /// The CA that issues the EK certificates; `None` creates a fresh one.
    pub ca: Option<Arc<TestCa>>,
}

impl Default for SwtpmOptions {
    fn default() -> Self {
        SwtpmOptions {
            ek_certs: true,
            pcr_banks: vec!["sha256".to_owned()],
            ca: None,
        }
    }
}

/// A running swtpm (TPM 2.0) serving TCP on `127.0.0.1:port` (data) and
/// `port + 1` (control), already past `TPM2_Startup(CLEAR)`.
///
/// Dropping it kills swtpm (SIGKILL, then reaped) and removes its temp dir,
/// also when the test panics. swtpm has no resource manager and 3 object
/// slots: clients must flush what they load.
#[derive(Debug)]
pub struct Swtpm {
    /// `None` once killed. `Drop` kills it before the fields, and so the
    /// temp dir, go.
    child: Option<Child>,
    port: u16,
    ca: Arc<TestCa>,
    state_dir: PathBuf,
    dir: TempDir,
}

impl Swtpm {
    /// Starts a swtpm with [`SwtpmOptions::default`]: EK certificates from a
    /// fresh CA, SHA-256 bank only (≈ 1.0–1.2 s, the CA included).
    pub fn start() -> io::Result<Swtpm> {
        Swtpm::start_with(SwtpmOptions::default())
    }

    /// Manufactures a TPM state with `swtpm_setup`, then starts swtpm on it;
    /// returns once swtpm answers on its control channel. ≈ 0.6 s with a
    /// shared CA, with or without EK certificates: `swtpm_setup` itself is
    /// the cost. Share a [`TestCa`] to save its creation per TPM.
    pub fn start_with(opts: SwtpmOptions) -> io::Result<Swtpm> {
        if opts.pcr_banks.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "SwtpmOptions::pcr_banks is empty: at least one PCR bank is needed",
            ));
        }
        let ca = match opts.ca {
            Some(ca) => ca,
            None => Arc::new(TestCa::new()?),
        };
        let dir = tempfile::Builder::new()
            .prefix("attestd-swtpm-")
            .tempdir()
            .map_err(|e| context(e, "cannot create the swtpm temp dir"))?;
        check_config_safe(dir.path())?;
        let state_dir = dir.path().join("state");
        fs::create_dir(&state_dir).map_err(|e| context(e, "cannot create the TPM state dir"))?;

        manufacture(dir.path(), &state_dir, &ca, opts.ek_certs, &opts.pcr_banks)?;

        let (data, ctrl) = bind_port_pair()?;
        let port = local_port(&data)?;
        let mut swtpm = Swtpm {
            child: None,
            port,
            ca,
            state_dir,
            dir,
        };
        swtpm.launch(data, ctrl)?;
        Ok(swtpm)
    }

    /// The TCTI string for this TPM, `swtpm:host=127.0.0.1,port=N`, as
    /// libtss2 and `TPM2TOOLS_TCTI` take it.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// The data port `N`; the control port is `N + 1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA that issued this TPM's EK certificates.
    pub fn ca(&self) -> &Arc<TestCa> {
        &self.ca
    }

    /// The TPM's NV state dir (`--tpmstate dir=`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// SIGKILLs swtpm now and reaps it: the TPM vanishes mid-whatever, like a
    /// crashed emulator or a yanked device. Its ports close, so clients get
    /// "connection refused". Volatile state (loaded objects, sessions, PCRs) is
    /// lost; NV state stays for [`Swtpm::restart`]. Does nothing if it is
    /// already dead.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error means the process is gone already; wait() reaps it
            // either way, so no zombie outlives the handle.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new swtpm on the same NV state and the same two ports (killing
    /// the running one first, if any), then runs `TPM2_Startup(CLEAR)` as a
    /// reboot would (≈ 7 ms). Fails if another process took one of the ports
    /// while the TPM was down.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        let data = bind_loopback(self.port)
            .map_err(|e| context(e, format!("cannot re-bind data port {}", self.port)))?;
        let ctrl_port = self.port + 1;
        let ctrl = bind_loopback(ctrl_port)
            .map_err(|e| context(e, format!("cannot re-bind control port {ctrl_port}")))?;
        self.launch(data, ctrl)
    }

    /// Spawns swtpm on the given listeners and waits until it serves them.
    fn launch(&mut self, data: TcpListener, ctrl: TcpListener) -> io::Result<()> {
        let stderr_path = self.dir.path().join("swtpm.stderr");
        let log_path = self.dir.path().join("swtpm.log");
        let mut stderr = File::options()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(|e| context(e, format!("cannot open {}", stderr_path.display())))?;
        // Restarts append to the same files; mark where each run begins.
        writeln!(stderr, "== swtpm started by attestd-tests ==")
            .map_err(|e| context(e, format!("cannot write {}", stderr_path.display())))?;
        let stdout = stderr
            .try_clone()
            .map_err(|e| context(e, "cannot duplicate the swtpm stderr file"))?;

        let swtpm = find_program("swtpm")?;
        let data_fd = data.as_raw_fd();
        let ctrl_fd = ctrl.as_raw_fd();
        let mut command = Command::new(&swtpm);
        command
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", self.state_dir.display()))
            // See the module docs for why the TCP data listener is `unixio`.
            .args(["--server", &format!("type=unixio,fd={data_fd}")])
            .args(["--ctrl", &format!("type=tcp,fd={ctrl_fd}")])
            .args(["--flags", "not-need-init,startup-clear"])
            .arg("--log")
            .arg(format!("file={}", log_path.display()))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // SAFETY: the closure runs in the forked child before exec and only
        // calls fcntl(2), which is async-signal-safe; it allocates nothing and
        // touches only the two descriptor numbers it captured by value, which
        // are open because `data` and `ctrl` outlive the spawn. The parent's
        // copies keep FD_CLOEXEC, so children spawned concurrently by other
        // tests never inherit them.
        unsafe {
            command.pre_exec(move || {
                inherit_fd(data_fd)?;
                inherit_fd(ctrl_fd)
            });
        }
        let child = command
            .spawn()
            .map_err(|e| context(e, format!("cannot run {}", swtpm.display())))?;
        self.child = Some(child);
        // From here on only swtpm holds the listeners, so its death closes the
        // ports (see the module docs).
        drop(data);
        drop(ctrl);

        if let Err(e) = probe_control_channel(self.port + 1) {
            self.kill();
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "swtpm did not come up on ports {}/{}: {e}{}{}",
                    self.port,
                    self.port + 1,
                    section("swtpm stderr", &tail(&stderr_path)),
                    section("swtpm.log", &tail(&log_path)),
                ),
            ));
        }
        Ok(())
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        // Before the temp dir goes: swtpm must not write into a removed dir,
        // and must not outlive the test.
        self.kill();
    }
}

/// Runs `swtpm_setup` to create a TPM 2.0 state in `state_dir`.
fn manufacture(
    work_dir: &Path,
    state_dir: &Path,
    ca: &TestCa,
    ek_certs: bool,
    pcr_banks: &[String],
) -> io::Result<()> {
    let localca = find_program("swtpm_localca")?;
    let setup_conf = work_dir.join("swtpm_setup.conf");
    write_file(
        &setup_conf,
        &format!(
            "create_certs_tool = {}\n\
             create_certs_tool_config = {}\n\
             create_certs_tool_options = {}\n",
            localca.display(),
            ca.localca_conf.display(),
            ca.localca_options.display(),
        ),
    )?;
    let log = work_dir.join("swtpm_setup.log");
    let setup = find_program("swtpm_setup")?;
    let mut command = Command::new(&setup);
    command
        .args(["--tpm2", "--tpm-state"])
        .arg(state_dir)
        .args(["--pcr-banks", &pcr_banks.join(",")])
        // Always our config: without one swtpm_setup falls back to
        // ~/.config or /etc and the system CA in /var/lib/swtpm-localca.
        .arg("--config")
        .arg(&setup_conf)
        .arg("--logfile")
        .arg(&log)
        // swtpm_setup collects the certificates in a mkdtemp dir; keep it in
        // ours.
        .env("TMPDIR", work_dir)
        .env_remove("SWTPM_ROOTCA_PASSWORD")
        .stdin(Stdio::null());
    if ek_certs {
        command.arg("--create-ek-cert");
    }
    let output = command
        .output()
        .map_err(|e| context(e, format!("cannot run {}", setup.display())))?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "swtpm_setup failed ({}){}{}{}",
            output.status,
            section("stdout", &String::from_utf8_lossy(&output.stdout)),
            section("stderr", &String::from_utf8_lossy(&output.stderr)),
            section("swtpm_setup.log", &tail(&log)),
        )));
    }
    Ok(())
}

/// Binds loopback listeners on two consecutive ports `N`, `N + 1`, with `N`
/// picked by the kernel; retries when `N + 1` is taken.
fn bind_port_pair() -> io::Result<(TcpListener, TcpListener)> {
    let mut last_error = None;
    for _ in 0..PORT_PAIR_ATTEMPTS {
        let data = bind_loopback(0).map_err(|e| context(e, "cannot bind a loopback port"))?;
        let Some(ctrl_port) = local_port(&data)?.checked_add(1) else {
            continue;
        };
        match bind_loopback(ctrl_port) {
            Ok(ctrl) => return Ok((data, ctrl)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
            Err(e) => return Err(context(e, format!("cannot bind loopback port {ctrl_port}"))),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!(
            "no free pair of consecutive loopback ports after {PORT_PAIR_ATTEMPTS} tries{}",
            last_error
                .map(|e| format!(" (last: {e})"))
                .unwrap_or_default()
        ),
    ))
}

fn bind_loopback(port: u16) -> io::Result<TcpListener> {
    // std sets SO_REUSEADDR, so a restart can re-bind a port whose old
    // connections sit in TIME_WAIT.
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

fn local_port(listener: &TcpListener) -> io::Result<u16> {
    Ok(listener
        .local_addr()
        .map_err(|e| context(e, "cannot read the listener's address"))?
        .port())
}

/// Clears `FD_CLOEXEC` so the descriptor survives exec; runs in the child.
fn inherit_fd(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain fcntl(2) on a descriptor number; no memory is involved.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks swtpm for its capabilities on the control channel. swtpm answers only
/// from its main loop, i.e. after `TPM2_Startup` ran; if it died instead, the
/// listener is closed and the connection fails or hits EOF. No polling: the
/// connection waits in the listener's queue until swtpm gets to it.
fn probe_control_channel(ctrl_port: u16) -> io::Result<()> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, ctrl_port))?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    stream.write_all(&CMD_GET_CAPABILITY.to_be_bytes())?;
    let mut capabilities = [0u8; 8];
    stream.read_exact(&mut capabilities)?;
    Ok(())
}

/// Finds a program in `PATH`. swtpm_setup needs `swtpm_localca`'s absolute
/// path in its config, and a missing tool deserves a clearer error than
/// "No such file or directory".
fn find_program(name: &str) -> io::Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name} not found in PATH; run scripts/ensure-deps.sh (Debian: swtpm, swtpm-tools)"),
            )
        })
}

/// swtpm's config files are `key = value` lines and its options are
/// `key=value,key=value`, neither with quoting: refuse a temp dir whose path
/// would not survive that (a `TMPDIR` with a comma or a newline, say).
fn check_config_safe(path: &Path) -> io::Result<()> {
    let text = path.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("temp dir path is not UTF-8: {}", path.display()),
        )
    })?;
    if text.contains(['\n', '\r', '#', ',']) || text.trim() != text {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("temp dir path {text:?} cannot be written into a swtpm config file; set TMPDIR to a plain path"),
        ));
    }
    Ok(())
}

fn write_file(path: &Path, contents: &str) -> io::Result<()> {
    fs::write(path, contents).map_err(|e| context(e, format!("cannot write {}", path.display())))
}

/// The last few KiB of a log file, or a note why there is none.
fn tail(path: &Path) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// Formats a titled block for an error message; empty text gives nothing.
fn section(title: &str, text: &str) -> String {
    let text = text.trim_end();
    if text.is_empty() {
        String::new()
    } else {
        format!("\n--- {title} ---\n{text}")
    }
}

fn context(err: io::Error, what: impl Display) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}
