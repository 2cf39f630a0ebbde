//! Best-effort text for UEFI device paths (UEFI 2.10 §10.3 and §10.6.1),
//! in the spec's text form: `PciRoot(0x0)/Pci(0x1,0x1)/…/\EFI\BOOT\BOOTX64.EFI`.
//! It only labels boot applications for people and policies; nothing is
//! verified from it (the device path is not covered by the measured digest),
//! so a path that does not parse yields `None` rather than an error.

use super::reader::LeReader;
use super::uefi::{guid_text, utf16le_lossy};

/// Nodes rendered before giving up; real paths have fewer than ten.
const MAX_NODES: usize = 64;

const HARDWARE: u8 = 0x01;
const ACPI: u8 = 0x02;
const MESSAGING: u8 = 0x03;
const MEDIA: u8 = 0x04;
const END: u8 = 0x7f;
const END_ENTIRE: u8 = 0xff;
const END_INSTANCE: u8 = 0x01;

/// EISA ids of the PCI and PCIe root bridges (PNP0A03, PNP0A08).
const PNP0A03: u32 = 0x0a03_41d0;
const PNP0A08: u32 = 0x0a08_41d0;

/// The text form of a device path, or `None` when its nodes do not parse.
pub fn device_path_text(path: &[u8]) -> Option<String> {
    let mut reader = LeReader::new(path);
    let mut text = String::new();
    let mut separator = "";
    for _ in 0..MAX_NODES {
        if reader.is_empty() {
            break;
        }
        let node_type = reader.u8("type").ok()?;
        let subtype = reader.u8("subtype").ok()?;
        let len = usize::from(reader.u16("length").ok()?);
        let body = reader.take(len.checked_sub(4)?, "node").ok()?;
        match (node_type, subtype) {
            (END, END_ENTIRE) => return Some(text),
            (END, END_INSTANCE) => {
                text.push(',');
                separator = "";
            }
            _ => {
                text.push_str(separator);
                text.push_str(&node_text(node_type, subtype, body));
                separator = "/";
            }
        }
    }
    // A path must end with an End Entire node; without one it is truncated.
    None
}

fn node_text(node_type: u8, subtype: u8, body: &[u8]) -> String {
    known_node_text(node_type, subtype, body).unwrap_or_else(|| {
        let data: String = body.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("Path({node_type},{subtype},{data})")
    })
}

fn known_node_text(node_type: u8, subtype: u8, body: &[u8]) -> Option<String> {
    let mut reader = LeReader::new(body);
    Some(match (node_type, subtype) {
        (HARDWARE, 0x01) => {
            let function = reader.u8("function").ok()?;
            let device = reader.u8("device").ok()?;
            format!("Pci(0x{device:x},0x{function:x})")
        }
        (HARDWARE, 0x04) => format!("VenHw({})", guid(&mut reader)?),
        (ACPI, 0x01) => {
            let hid = reader.u32("HID").ok()?;
            let uid = reader.u32("UID").ok()?;
            match hid {
                PNP0A03 => format!("PciRoot(0x{uid:x})"),
                PNP0A08 => format!("PcieRoot(0x{uid:x})"),
                _ => format!("Acpi(0x{hid:08x},0x{uid:x})"),
            }
        }
        (MESSAGING, 0x02) => {
            let target = reader.u16("target").ok()?;
            let lun = reader.u16("lun").ok()?;
            format!("Scsi(0x{target:x},0x{lun:x})")
        }
        (MESSAGING, 0x05) => {
            let port = reader.u8("port").ok()?;
            let interface = reader.u8("interface").ok()?;
            format!("USB(0x{port:x},0x{interface:x})")
        }
        (MESSAGING, 0x0a) => format!("VenMsg({})", guid(&mut reader)?),
        (MESSAGING, 0x12) => {
            let hba = reader.u16("hba port").ok()?;
            let multiplier = reader.u16("multiplier port").ok()?;
            let lun = reader.u16("lun").ok()?;
            format!("Sata(0x{hba:x},0x{multiplier:x},0x{lun:x})")
        }
        (MESSAGING, 0x17) => {
            let namespace = reader.u32("namespace").ok()?;
            let eui: Vec<String> = reader
                .take(8, "eui64")
                .ok()?
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            format!("NVMe(0x{namespace:x},{})", eui.join("-"))
        }
        (MEDIA, 0x01) => hard_drive(&mut reader)?,
        (MEDIA, 0x03) => format!("VenMedia({})", guid(&mut reader)?),
        (MEDIA, 0x04) => utf16le_lossy(body).trim_end_matches('\0').to_owned(),
        (MEDIA, 0x06) => format!("FvFile({})", guid(&mut reader)?),
        (MEDIA, 0x07) => format!("Fv({})", guid(&mut reader)?),
        (MEDIA, 0x08) => {
            reader.u32("reserved").ok()?;
            let start = reader.u64("start").ok()?;
            let end = reader.u64("end").ok()?;
            format!("Offset(0x{start:x},0x{end:x})")
        }
        _ => return None,
    })
}

fn guid(reader: &mut LeReader<'_>) -> Option<String> {
    reader.array::<16>("guid").ok().map(|guid| guid_text(&guid))
}

fn hard_drive(reader: &mut LeReader<'_>) -> Option<String> {
    let partition = reader.u32("partition").ok()?;
    let start = reader.u64("start").ok()?;
    let size = reader.u64("size").ok()?;
    let signature = reader.array::<16>("signature").ok()?;
    let _mbr_type = reader.u8("mbr type").ok()?;
    let signature_type = reader.u8("signature type").ok()?;
    let signature = match signature_type {
        1 => {
            let mbr = u32::from_le_bytes([signature[0], signature[1], signature[2], signature[3]]);
            format!("MBR,0x{mbr:08x}")
        }
        2 => format!("GPT,{}", guid_text(&signature)),
        _ => return None,
    };
    Some(format!(
        "HD({partition},{signature},0x{start:x},0x{size:x})"
    ))
}

#[cfg(test)]
#[path = "device_path_test.rs"]
mod tests;
