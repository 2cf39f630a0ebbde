//! Configuration layering and error reporting.

use super::*;
use std::io::Write;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

#[test]
fn defaults_apply_when_nothing_is_configured() {
    let config = load(&ConfigSources::default()).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.api.socket, PathBuf::from("/run/attestd/api.sock"));
}

#[test]
fn layers_override_in_order_file_dropins_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "attestd.toml",
        "[api]\nsocket = \"/tmp/a.sock\"\nmax_connections = 10\nsocket_mode = \"0600\"\n",
    );
    let dropins = dir.path().join("attestd.d");
    std::fs::create_dir(&dropins).unwrap();
    write(&dropins, "10-first.toml", "[api]\nmax_connections = 20\n");
    write(&dropins, "20-second.toml", "[api]\nmax_connections = 30\n");
    write(&dropins, "ignored.conf", "not toml at all [");
    let config = load(&ConfigSources {
        file: Some(file),
        dropin_dir: Some(dropins),
        env: vec![
            ("ATTESTD_API__REQUEST_TIMEOUT_MS".into(), "250".into()),
            (
                "ATTESTD_TPM__TCTI".into(),
                "swtpm:host=127.0.0.1,port=4000".into(),
            ),
            ("ATTESTD_LOG".into(), "debug".into()),
            ("HOME".into(), "/root".into()),
        ],
    })
    .unwrap();
    assert_eq!(config.api.socket, PathBuf::from("/tmp/a.sock"));
    assert_eq!(config.api.max_connections, 30);
    assert_eq!(config.api.socket_mode, 0o600);
    assert_eq!(config.api.request_timeout_ms, 250);
    assert_eq!(config.tpm.tcti, "swtpm:host=127.0.0.1,port=4000");
    // Untouched keys keep their defaults.
    assert_eq!(
        config.api.max_message_bytes,
        ApiConfig::default().max_message_bytes
    );
}

#[test]
fn unknown_key_is_reported_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "attestd.toml",
        "# comment\n[api]\nsocket = \"/tmp/a.sock\"\nsokcet_mode = \"0600\"\n",
    );
    let error = load(&ConfigSources {
        file: Some(file.clone()),
        ..ConfigSources::default()
    })
    .unwrap_err();
    let problem = &error.problems[0];
    assert_eq!(problem.origin, file.display().to_string());
    assert_eq!(problem.line, Some(4));
    assert!(problem.message.contains("sokcet_mode"), "{problem}");
    assert!(error.to_string().contains(":4: "), "{error}");
}

#[test]
fn wrong_type_is_reported_with_line_and_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "a.toml",
        "[api]\n\nmax_connections = \"many\"\n",
    );
    let error = load(&ConfigSources {
        file: Some(file),
        ..ConfigSources::default()
    })
    .unwrap_err();
    let problem = &error.problems[0];
    assert_eq!(problem.line, Some(3));
    assert_eq!(problem.key.as_deref(), Some("api.max_connections"));
}

#[test]
fn syntax_error_is_reported_with_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a.toml", "[api]\nsocket = \"/x\n");
    let error = load(&ConfigSources {
        file: Some(file),
        ..ConfigSources::default()
    })
    .unwrap_err();
    assert_eq!(error.problems[0].line, Some(2), "{error}");
}

#[test]
fn bad_environment_variable_is_named() {
    let error = load(&ConfigSources {
        env: vec![("ATTESTD_API__MAX_CONNECTIONS".into(), "lots".into())],
        ..ConfigSources::default()
    })
    .unwrap_err();
    assert!(
        error.problems[0]
            .origin
            .contains("ATTESTD_API__MAX_CONNECTIONS"),
        "{error}"
    );
    let unknown = load(&ConfigSources {
        env: vec![("ATTESTD_API__SOKCET".into(), "/x".into())],
        ..ConfigSources::default()
    })
    .unwrap_err();
    assert!(unknown.to_string().contains("sokcet"), "{unknown}");
}

#[test]
fn semantic_problems_name_the_key() {
    let error = load(&ConfigSources {
        env: vec![
            ("ATTESTD_API__SOCKET".into(), "relative.sock".into()),
            ("ATTESTD_TPM__TCTI".into(), "swtpm:path=/x".into()),
            ("ATTESTD_API__SOCKET_MODE".into(), "\"0999\"".into()),
        ],
        ..ConfigSources::default()
    })
    .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("api.socket_mode"), "{text}");
    let error = load(&ConfigSources {
        env: vec![
            ("ATTESTD_API__SOCKET".into(), "relative.sock".into()),
            ("ATTESTD_TPM__TCTI".into(), "swtpm:path=/x".into()),
        ],
        ..ConfigSources::default()
    })
    .unwrap_err();
    let keys: Vec<_> = error
        .problems
        .iter()
        .filter_map(|p| p.key.clone())
        .collect();
    assert_eq!(keys, vec!["api.socket", "tpm.tcti"]);
}

#[test]
fn missing_main_file_is_an_error_but_missing_dropin_dir_is_not() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load(&ConfigSources {
        file: Some(dir.path().join("absent.toml")),
        ..ConfigSources::default()
    })
    .is_err());
    assert!(load(&ConfigSources {
        dropin_dir: Some(dir.path().join("absent.d")),
        ..ConfigSources::default()
    })
    .is_ok());
}
