//! The TCTI parser refuses what it cannot honour and keeps what it can.

use super::*;

#[test]
fn default_is_kernel_resource_manager() {
    assert_eq!(Tcti::default().to_string(), "device:/dev/tpmrm0");
    assert_eq!("device".parse::<Tcti>(), Ok(Tcti::default()));
}

#[test]
fn parses_swtpm_host_and_port() {
    let tcti: Tcti = "swtpm:host=127.0.0.1,port=40000".parse().unwrap();
    assert_eq!(
        tcti,
        Tcti::SwtpmTcp {
            host: "127.0.0.1".into(),
            port: 40000
        }
    );
    assert_eq!(tcti.to_string(), "swtpm:host=127.0.0.1,port=40000");
}

#[test]
fn swtpm_path_is_refused_not_reinterpreted() {
    let err = "swtpm:path=/tmp/swtpm.sock".parse::<Tcti>().unwrap_err();
    assert_eq!(err, TctiParseError::SwtpmPathUnsupported);
    assert!(err.to_string().contains("type=tcp"));
}

#[test]
fn unknown_options_are_refused() {
    assert!(matches!(
        "swtpm:host=localhost,prot=1".parse::<Tcti>(),
        Err(TctiParseError::UnknownOption { key, .. }) if key == "prot"
    ));
    assert!(matches!(
        "mssim:host=localhost".parse::<Tcti>(),
        Err(TctiParseError::UnknownTcti(name)) if name == "mssim"
    ));
}

#[test]
fn bad_ports_and_hosts_are_refused() {
    for bad in [
        "swtpm:port=0",
        "swtpm:port=65535",
        "swtpm:port=x",
        "swtpm:host=a b",
        "swtpm:host=",
        "swtpm:port",
    ] {
        assert!(bad.parse::<Tcti>().is_err(), "{bad} should be refused");
    }
}

#[test]
fn device_path_must_be_absolute() {
    assert!(matches!(
        "device:tpm0".parse::<Tcti>(),
        Err(TctiParseError::RelativeDevicePath(_))
    ));
    assert_eq!(
        "device:/dev/tpm0".parse::<Tcti>().unwrap(),
        Tcti::Device("/dev/tpm0".into())
    );
}

#[test]
fn tabrmd_round_trips() {
    let tcti: Tcti = "tabrmd:bus_type=session".parse().unwrap();
    assert_eq!(tcti.to_string(), "tabrmd:bus_type=session");
    assert_eq!(
        "tabrmd".parse::<Tcti>().unwrap().to_string(),
        "tabrmd:bus_type=system"
    );
}

#[test]
fn typed_conf_keeps_host_and_port() {
    let tcti: Tcti = "swtpm:host=127.0.0.1,port=40001".parse().unwrap();
    let conf = tcti.to_name_conf().unwrap();
    // This is the exact string tss-esapi hands to libtss2's loader.
    let handed_to_libtss2 = std::ffi::CString::try_from(conf).unwrap();
    assert_eq!(
        handed_to_libtss2.to_str().unwrap(),
        "swtpm:host=127.0.0.1,port=40001"
    );
}
