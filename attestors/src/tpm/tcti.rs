//! TCTI strings: which TPM to talk to, parsed strictly so that a string is never
//! silently reinterpreted as a different TPM.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use tss_esapi::tcti_ldr::{DeviceConfig, NetworkTPMConfig, TabrmdConfig, TctiNameConf};

/// Where the TPM is.
///
/// tss-esapi 7.6 has its own parser (`TctiNameConf::from_str`) that drops keys it does
/// not know: `swtpm:path=/x` turns into `swtpm:host=localhost,port=2321`, which is
/// some *other* TPM if one listens there. We parse every string ourselves, refuse any
/// key we do not honour, and hand tss-esapi a typed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tcti {
    /// A character device, normally the kernel resource manager `/dev/tpmrm0`.
    Device(PathBuf),
    /// swtpm over TCP: the command port and the control port (`port + 1`).
    SwtpmTcp { host: String, port: u16 },
    /// The TPM2 Access Broker & Resource Manager daemon over D-Bus.
    Tabrmd {
        bus_name: Option<String>,
        system_bus: bool,
    },
}

impl Default for Tcti {
    fn default() -> Self {
        Tcti::Device(PathBuf::from("/dev/tpmrm0"))
    }
}

/// Why a TCTI string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TctiParseError {
    #[error(
        "empty TCTI string; expected e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321"
    )]
    Empty,
    #[error("unknown TCTI \"{0}\"; supported: device, swtpm, tabrmd")]
    UnknownTcti(String),
    #[error("TCTI {tcti}: unknown option \"{key}\"")]
    UnknownOption { tcti: &'static str, key: String },
    #[error("TCTI {tcti}: option \"{0}\" has no value", .key)]
    MissingValue { tcti: &'static str, key: String },
    #[error("TCTI {tcti}: invalid value for {key}: \"{value}\"")]
    InvalidValue {
        tcti: &'static str,
        key: &'static str,
        value: String,
    },
    #[error(
        "swtpm:path= (a Unix socket) is not supported: tss-esapi 7.6 cannot pass a socket path \
         to libtss2 and would silently connect to localhost:2321 instead; \
         run swtpm with --server type=tcp and use swtpm:host=127.0.0.1,port=N"
    )]
    SwtpmPathUnsupported,
    #[error("device TCTI needs an absolute path, got \"{0}\"")]
    RelativeDevicePath(String),
}

impl FromStr for Tcti {
    type Err = TctiParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(TctiParseError::Empty);
        }
        let (name, conf) = match s.split_once(':') {
            Some((name, conf)) => (name, conf),
            None => (s, ""),
        };
        match name {
            "device" => parse_device(conf),
            "swtpm" => parse_swtpm(conf),
            "tabrmd" => parse_tabrmd(conf),
            other => Err(TctiParseError::UnknownTcti(other.to_owned())),
        }
    }
}

fn parse_device(conf: &str) -> Result<Tcti, TctiParseError> {
    let path = if conf.is_empty() { "/dev/tpmrm0" } else { conf };
    if !path.starts_with('/') {
        return Err(TctiParseError::RelativeDevicePath(path.to_owned()));
    }
    Ok(Tcti::Device(PathBuf::from(path)))
}

/// Splits `k=v,k=v`, refusing keys without values.
fn options<'a>(
    tcti: &'static str,
    conf: &'a str,
) -> impl Iterator<Item = Result<(&'a str, &'a str), TctiParseError>> + 'a {
    conf.split(',')
        .filter(|option| !option.is_empty())
        .map(move |option| {
            option
                .split_once('=')
                .ok_or_else(|| TctiParseError::MissingValue {
                    tcti,
                    key: option.to_owned(),
                })
        })
}

fn parse_swtpm(conf: &str) -> Result<Tcti, TctiParseError> {
    let mut host = String::from("localhost");
    let mut port: u16 = 2321;
    for option in options("swtpm", conf) {
        let (key, value) = option?;
        match key {
            "host" => {
                if !valid_host(value) {
                    return Err(TctiParseError::InvalidValue {
                        tcti: "swtpm",
                        key: "host",
                        value: value.to_owned(),
                    });
                }
                host = value.to_owned();
            }
            "port" => {
                port = value
                    .parse::<u16>()
                    .ok()
                    // The control channel is port + 1, so the last port cannot work.
                    .filter(|p| *p != 0 && *p != u16::MAX)
                    .ok_or_else(|| TctiParseError::InvalidValue {
                        tcti: "swtpm",
                        key: "port",
                        value: value.to_owned(),
                    })?;
            }
            "path" => return Err(TctiParseError::SwtpmPathUnsupported),
            other => {
                return Err(TctiParseError::UnknownOption {
                    tcti: "swtpm",
                    key: other.to_owned(),
                })
            }
        }
    }
    Ok(Tcti::SwtpmTcp { host, port })
}

fn valid_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn parse_tabrmd(conf: &str) -> Result<Tcti, TctiParseError> {
    let mut bus_name = None;
    let mut system_bus = true;
    for option in options("tabrmd", conf) {
        let (key, value) = option?;
        match key {
            "bus_name" => bus_name = Some(value.to_owned()),
            "bus_type" => {
                system_bus = match value {
                    "system" => true,
                    "session" => false,
                    _ => {
                        return Err(TctiParseError::InvalidValue {
                            tcti: "tabrmd",
                            key: "bus_type",
                            value: value.to_owned(),
                        })
                    }
                }
            }
            other => {
                return Err(TctiParseError::UnknownOption {
                    tcti: "tabrmd",
                    key: other.to_owned(),
                })
            }
        }
    }
    Ok(Tcti::Tabrmd {
        bus_name,
        system_bus,
    })
}

impl fmt::Display for Tcti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tcti::Device(path) => write!(f, "device:{}", path.display()),
            Tcti::SwtpmTcp { host, port } => write!(f, "swtpm:host={host},port={port}"),
            Tcti::Tabrmd {
                bus_name,
                system_bus,
            } => {
                let bus_type = if *system_bus { "system" } else { "session" };
                match bus_name {
                    Some(name) => write!(f, "tabrmd:bus_name={name},bus_type={bus_type}"),
                    None => write!(f, "tabrmd:bus_type={bus_type}"),
                }
            }
        }
    }
}

impl Tcti {
    /// The typed configuration tss-esapi needs; no string round trip through its parser.
    pub(crate) fn to_name_conf(&self) -> Result<TctiNameConf, TctiParseError> {
        match self {
            Tcti::Device(path) => Ok(TctiNameConf::Device(
                DeviceConfig::from_str(&path.to_string_lossy()).map_err(|_| {
                    TctiParseError::InvalidValue {
                        tcti: "device",
                        key: "path",
                        value: path.display().to_string(),
                    }
                })?,
            )),
            Tcti::SwtpmTcp { host, port } => {
                let config = NetworkTPMConfig::from_str(&format!("host={host},port={port}"))
                    .map_err(|_| TctiParseError::InvalidValue {
                        tcti: "swtpm",
                        key: "host",
                        value: host.clone(),
                    })?;
                Ok(TctiNameConf::Swtpm(config))
            }
            Tcti::Tabrmd {
                bus_name,
                system_bus,
            } => {
                let bus_type = if *system_bus { "system" } else { "session" };
                let conf = match bus_name {
                    Some(name) => format!("bus_name={name},bus_type={bus_type}"),
                    None => format!("bus_type={bus_type}"),
                };
                let config =
                    TabrmdConfig::from_str(&conf).map_err(|_| TctiParseError::InvalidValue {
                        tcti: "tabrmd",
                        key: "bus_name",
                        value: bus_name.clone().unwrap_or_default(),
                    })?;
                Ok(TctiNameConf::Tabrmd(config))
            }
        }
    }
}

#[cfg(test)]
#[path = "tcti_test.rs"]
mod tests;
