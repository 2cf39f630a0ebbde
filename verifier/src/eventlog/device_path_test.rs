//! Unit tests for device path text.

use super::*;
use crate::eventlog::test_support::{end_node, file_path_node, node};

fn path(nodes: &[Vec<u8>]) -> Vec<u8> {
    nodes.concat()
}

fn hard_drive_gpt() -> Vec<u8> {
    let mut body = 1u32.to_le_bytes().to_vec();
    body.extend_from_slice(&0x800u64.to_le_bytes());
    body.extend_from_slice(&0x10_0000u64.to_le_bytes());
    body.extend_from_slice(&crate::eventlog::uefi::EFI_GLOBAL_VARIABLE);
    body.extend_from_slice(&[2, 2]); // GPT partition format, GUID signature
    node(0x04, 0x01, &body)
}

#[test]
fn renders_a_disk_boot_path() {
    let pci_root = node(0x02, 0x01, &[0xd0, 0x41, 0x03, 0x0a, 0, 0, 0, 0]);
    let pci = node(0x01, 0x01, &[0x00, 0x03]); // function 0, device 3
    let scsi = node(0x03, 0x02, &[0, 0, 0, 0]);
    let bytes = path(&[
        pci_root,
        pci,
        scsi,
        hard_drive_gpt(),
        file_path_node("\\EFI\\BOOT\\BOOTX64.EFI"),
        end_node(),
    ]);
    assert_eq!(
        device_path_text(&bytes).as_deref(),
        Some(
            "PciRoot(0x0)/Pci(0x3,0x0)/Scsi(0x0,0x0)/\
             HD(1,GPT,8be4df61-93ca-11d2-aa0d-00e098032b8c,0x800,0x100000)/\
             \\EFI\\BOOT\\BOOTX64.EFI"
        )
    );
}

#[test]
fn renders_ovmfs_kernel_loader_file_system() {
    let guid = [0x11; 16];
    let bytes = path(&[
        node(0x04, 0x03, &guid),
        file_path_node("kernel"),
        end_node(),
    ]);
    assert_eq!(
        device_path_text(&bytes).as_deref(),
        Some("VenMedia(11111111-1111-1111-1111-111111111111)/kernel")
    );
}

#[test]
fn renders_firmware_volume_files_and_offsets() {
    let mut offset = 0u32.to_le_bytes().to_vec();
    offset.extend_from_slice(&0x10u64.to_le_bytes());
    offset.extend_from_slice(&0x20u64.to_le_bytes());
    let bytes = path(&[
        node(0x04, 0x07, &[0x22; 16]),
        node(0x04, 0x06, &[0x33; 16]),
        node(0x04, 0x08, &offset),
        end_node(),
    ]);
    assert_eq!(
        device_path_text(&bytes).as_deref(),
        Some(
            "Fv(22222222-2222-2222-2222-222222222222)/\
             FvFile(33333333-3333-3333-3333-333333333333)/Offset(0x10,0x20)"
        )
    );
}

#[test]
fn renders_unknown_nodes_generically_and_instances_with_commas() {
    let bytes = path(&[
        node(0x05, 0x01, &[0xab, 0xcd]),
        node(0x7f, 0x01, &[]),
        file_path_node("x"),
        end_node(),
    ]);
    assert_eq!(
        device_path_text(&bytes).as_deref(),
        Some("Path(5,1,abcd),x")
    );
}

#[test]
fn a_known_node_too_short_for_its_fields_is_rendered_generically() {
    let bytes = path(&[node(0x01, 0x01, &[0x07]), end_node()]);
    assert_eq!(device_path_text(&bytes).as_deref(), Some("Path(1,1,07)"));
}

#[test]
fn renders_mbr_partitions_and_messaging_nodes() {
    let mut mbr = 2u32.to_le_bytes().to_vec();
    mbr.extend_from_slice(&0x3fu64.to_le_bytes());
    mbr.extend_from_slice(&0x1000u64.to_le_bytes());
    let mut signature = [0u8; 16];
    signature[..4].copy_from_slice(&0xdead_beefu32.to_le_bytes());
    mbr.extend_from_slice(&signature);
    mbr.extend_from_slice(&[1, 1]);
    let mut nvme = 1u32.to_le_bytes().to_vec();
    nvme.extend_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7]);
    let bytes = path(&[
        node(0x03, 0x05, &[2, 0]),
        node(0x03, 0x12, &[1, 0, 0xff, 0xff, 0, 0]),
        node(0x03, 0x17, &nvme),
        node(0x04, 0x01, &mbr),
        end_node(),
    ]);
    assert_eq!(
        device_path_text(&bytes).as_deref(),
        Some(
            "USB(0x2,0x0)/Sata(0x1,0xffff,0x0)/NVMe(0x1,00-01-02-03-04-05-06-07)/\
             HD(2,MBR,0xdeadbeef,0x3f,0x1000)"
        )
    );
}

#[test]
fn a_path_that_does_not_parse_has_no_text() {
    // No End node.
    assert_eq!(device_path_text(&file_path_node("x")), None);
    // A node length below the 4-byte header.
    assert_eq!(device_path_text(&[0x04, 0x04, 0x02, 0x00]), None);
    // A node length past the end.
    assert_eq!(device_path_text(&[0x04, 0x04, 0xff, 0x00, 0x41]), None);
    // Empty.
    assert_eq!(device_path_text(&[]), None);
}
