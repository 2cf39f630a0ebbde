//! `attestd-issuer jwt rotate` and `jwt list`, run as the binary operators
//! use, on the key files a running issuer reads.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ISSUER: &str = env!("CARGO_BIN_EXE_attestd-issuer");

fn config(dir: &Path) -> PathBuf {
    let path = |name: &str| dir.join(name).display().to_string();
    let text = format!(
        "listen = \"127.0.0.1:0\"\n\
         trust_domain = \"example.org\"\n\
         [ca]\ncert = {:?}\nkey = {:?}\n\
         [ek]\nallowlist = {:?}\n\
         [jwt]\nprepublish_secs = 3600\n",
        path("ca.pem"),
        path("ca.key"),
        path("ek-allowlist"),
    );
    let file = dir.join("issuer.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn jwt(args: &[&str], config: &Path) -> Output {
    Command::new(ISSUER)
        .arg("jwt")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn rotate_adds_a_private_key_a_window_ahead_and_list_shows_where_each_stands() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    // The first key, as a running issuer makes it.
    attestd_issuer::jwt::JwtKeys::open(&attestd_issuer::Config::load(&config).unwrap(), now())
        .unwrap();

    let before = now();
    let output = jwt(&["rotate"], &config);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_owned()
    };
    let kid = field("kid: ");
    let activation: i64 = field("activates at: ")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        activation >= before + 3600 && activation <= now() + 3600,
        "{stdout}"
    );
    let file = PathBuf::from(field("file: "));
    assert_eq!(file, dir.path().join(format!("jwt-keys/{activation}.key")));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The private key is never printed.
    assert!(!stdout.contains("PRIVATE"), "{stdout}");
    assert!(!text(&output.stderr).contains("PRIVATE"));

    let output = jwt(&["list"], &config);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let lines: Vec<Vec<String>> = text(&output.stdout)
        .lines()
        .map(|line| line.split(' ').map(str::to_owned).collect())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0][0], "0");
    assert_eq!(lines[0][1], "signing");
    assert_eq!(lines[1][0], activation.to_string());
    assert_eq!(lines[1][1], "published");
    assert_eq!(lines[1][2], kid);

    // A key others can read stops both commands, naming the file.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    for command in ["rotate", "list"] {
        let output = jwt(&[command], &config);
        assert_eq!(output.status.code(), Some(74), "{command}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&file.display().to_string()) && stderr.contains("readable by others"),
            "{command}: {stderr}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("jwt-keys"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn an_invalid_config_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let text_before = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text_before.replace("prepublish_secs = 3600", "prepublish_secs = 1"),
    )
    .unwrap();
    let output = jwt(&["rotate"], &config);
    assert_eq!(output.status.code(), Some(64));
    assert!(
        text(&output.stderr).contains("jwt.prepublish_secs"),
        "{}",
        text(&output.stderr)
    );
}
