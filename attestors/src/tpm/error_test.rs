//! Unit tests for `error.rs`.
use super::*;

#[test]
fn object_memory_full_reads_as_words() {
    assert_eq!(describe_response_code(0x902), "TPM object memory full");
    let error = TpmError::Tpm {
        operation: "loading the AK",
        description: describe_response_code(0x902),
        code: 0x902,
    };
    assert_eq!(
        error.to_string(),
        "loading the AK: TPM object memory full (0x902)"
    );
}

#[test]
fn format_one_codes_name_the_parameter() {
    // TPM_RC_INTEGRITY on parameter 1, as ActivateCredential returns for a wrong blob.
    assert_eq!(
        describe_response_code(0x1df),
        "integrity check failed (wrong secret, key or credential blob) (parameter 1)"
    );
}

#[test]
fn tcti_io_error_is_a_connection_failure() {
    let error = TpmError::Tpm {
        operation: "quote",
        description: describe_response_code(0xa000a),
        code: 0xa000a,
    };
    assert!(error.is_connection_failure());
    assert!(error.to_string().contains("I/O error talking to the TPM"));
}

#[test]
fn esys_bad_sequence_needs_a_new_context_but_tpm_errors_do_not() {
    let error = |code| TpmError::Tpm {
        operation: "quote",
        description: describe_response_code(code),
        code,
    };
    assert!(error(0x70007).is_connection_failure());
    assert!(!error(0x902).is_connection_failure());
    assert!(!error(0x1df).is_connection_failure());
}
