//! Unit tests for `selector.rs`: display format and injective escaping.
use std::collections::HashSet;

use super::Selector;

#[test]
fn displays_as_kind_key_value() {
    assert_eq!(
        Selector::new("unix", "uid", "1000").to_string(),
        "unix:uid:1000"
    );
    // Colons in the value are kept: readers split at the first two only.
    assert_eq!(
        Selector::new("cgroup", "v1-path", "cpu,cpuacct:/docker/x").to_string(),
        "cgroup:v1-path:cpu,cpuacct:/docker/x"
    );
}

#[test]
fn plain_values_are_kept_verbatim() {
    let value = "/usr/bin/my app (deleted) é";
    assert_eq!(Selector::new("unix", "path", value).value, value);
}

#[test]
fn control_characters_are_escaped_onto_one_line() {
    let selector = Selector::new("unix", "path", "/tmp/a\nunix:uid:0\t\r\x1b[31m\u{85}");
    assert_eq!(
        selector.value,
        "/tmp/a\\nunix:uid:0\\t\\r\\u{1b}[31m\\u{85}"
    );
    assert!(!selector.to_string().chars().any(char::is_control));
}

#[test]
fn invisible_formatting_characters_are_escaped() {
    let selector = Selector::new("unix", "path", "/bin/\u{202e}txt.exe\u{200b}\u{2028}");
    assert_eq!(selector.value, "/bin/\\u{202e}txt.exe\\u{200b}\\u{2028}");
}

#[test]
fn invalid_utf8_bytes_are_written_as_hex() {
    let selector = Selector::from_bytes("unix", "path", b"/opt/\xff\xfeok\n");
    assert_eq!(selector.value, "/opt/\\xff\\xfeok\\n");
}

#[test]
fn escaping_is_injective() {
    // A literal backslash sequence must never collide with the byte it names.
    let inputs: [&[u8]; 6] = [
        b"a\nb",
        b"a\\nb",
        b"a\\\\nb",
        b"a\xffb",
        b"a\\xffb",
        "a\u{ff}b".as_bytes(),
    ];
    let values: HashSet<String> = inputs
        .iter()
        .map(|bytes| Selector::from_bytes("unix", "path", bytes).value)
        .collect();
    assert_eq!(values.len(), inputs.len(), "{values:?}");
}

#[test]
fn new_and_from_bytes_agree_on_utf8() {
    let text = "x\\y\nz\u{7f}";
    assert_eq!(
        Selector::new("k", "v", text),
        Selector::from_bytes("k", "v", text.as_bytes())
    );
}
