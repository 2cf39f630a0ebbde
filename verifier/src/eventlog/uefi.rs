//! The UEFI structures inside event data that claims are read from
//! (PFP §10.2.3 UEFI_VARIABLE_DATA, §10.2.4 UEFI_IMAGE_LOAD_EVENT) and the
//! UTF-16 and GUID encodings they use.

use crate::tpm2::ParseError;

use super::reader::LeReader;

/// EFI_GLOBAL_VARIABLE (8be4df61-93ca-11d2-aa0d-00e098032b8c) as stored:
/// the first three fields little-endian.
pub(crate) const EFI_GLOBAL_VARIABLE: [u8; 16] = [
    0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c,
];

/// A measured UEFI variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UefiVariable<'a> {
    pub(crate) vendor: [u8; 16],
    /// The name with any trailing NULs removed.
    pub(crate) name: String,
    pub(crate) data: &'a [u8],
}

/// UEFI_VARIABLE_DATA. UnicodeNameLength counts UTF-16 code units; firmware
/// disagrees on whether the terminating NUL is included (quirk), so trailing
/// NULs are dropped from the decoded name either way. Bytes after
/// VariableData are tolerated: the measured digest covers them anyway.
pub(crate) fn parse_uefi_variable(data: &[u8]) -> Result<UefiVariable<'_>, ParseError> {
    let mut reader = LeReader::new(data);
    let vendor = reader.array::<16>("UEFI_VARIABLE_DATA.VariableName")?;
    let name_units = reader.u64("UEFI_VARIABLE_DATA.UnicodeNameLength")?;
    let data_len = reader.u64("UEFI_VARIABLE_DATA.VariableDataLength")?;
    let name_len = usize::try_from(name_units)
        .ok()
        .and_then(|units| units.checked_mul(2))
        .unwrap_or(usize::MAX);
    let name = reader.sized(name_len, data.len(), "UEFI_VARIABLE_DATA.UnicodeName")?;
    let value = reader.sized(
        usize::try_from(data_len).unwrap_or(usize::MAX),
        data.len(),
        "UEFI_VARIABLE_DATA.VariableData",
    )?;
    Ok(UefiVariable {
        vendor,
        name: utf16le_lossy(name).trim_end_matches('\0').to_owned(),
        data: value,
    })
}

/// The device path of a UEFI_IMAGE_LOAD_EVENT.
pub(crate) fn image_load_device_path(data: &[u8]) -> Result<&[u8], ParseError> {
    let mut reader = LeReader::new(data);
    reader.u64("UEFI_IMAGE_LOAD_EVENT.ImageLocationInMemory")?;
    reader.u64("UEFI_IMAGE_LOAD_EVENT.ImageLengthInMemory")?;
    reader.u64("UEFI_IMAGE_LOAD_EVENT.ImageLinkTimeAddress")?;
    let len = reader.u64("UEFI_IMAGE_LOAD_EVENT.LengthOfDevicePath")?;
    reader.sized(
        usize::try_from(len).unwrap_or(usize::MAX),
        data.len(),
        "UEFI_IMAGE_LOAD_EVENT.DevicePath",
    )
}

/// Decodes UTF-16LE, replacing unpaired surrogates and ignoring an odd
/// trailing byte (both mean the text was never well-formed).
pub(crate) fn utf16le_lossy(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
    char::decode_utf16(units)
        .map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// A GUID in registry format (8-4-4-4-12, lowercase).
pub(crate) fn guid_text(guid: &[u8; 16]) -> String {
    let data1 = u32::from_le_bytes([guid[0], guid[1], guid[2], guid[3]]);
    let data2 = u16::from_le_bytes([guid[4], guid[5]]);
    let data3 = u16::from_le_bytes([guid[6], guid[7]]);
    let tail: String = guid[10..]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!(
        "{data1:08x}-{data2:04x}-{data3:04x}-{:02x}{:02x}-{tail}",
        guid[8], guid[9]
    )
}

#[cfg(test)]
#[path = "uefi_test.rs"]
mod tests;
