//! The :authority fix-up, fed the byte streams real clients send.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::*;

/// Hands out its bytes in pieces of `step`, like a socket might.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
    step: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let end = (self.at + self.step)
            .min(self.bytes.len())
            .min(self.at + buf.remaining());
        let at = self.at;
        buf.put_slice(&self.bytes[at..end]);
        self.at = end;
        Poll::Ready(Ok(()))
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut bytes = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A decoded header list: (name, value) pairs.
type Headers = Vec<(Vec<u8>, Vec<u8>)>;

fn request_headers(authority: &[u8]) -> Headers {
    vec![
        (b":method".to_vec(), b"POST".to_vec()),
        (b":scheme".to_vec(), b"http".to_vec()),
        (
            b":path".to_vec(),
            b"/SpiffeWorkloadAPI/FetchX509SVID".to_vec(),
        ),
        (b":authority".to_vec(), authority.to_vec()),
        (b"te".to_vec(), b"trailers".to_vec()),
        (b"workload.spiffe.io".to_vec(), b"true".to_vec()),
    ]
}

fn encode(encoder: &mut loona_hpack::Encoder<'_>, headers: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    encoder.encode(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())))
}

async fn through_fix(bytes: Vec<u8>, step: usize) -> std::io::Result<Vec<u8>> {
    let mut fix = AuthorityFix::new(Trickle { bytes, at: 0, step });
    let mut out = Vec::new();
    fix.read_to_end(&mut out).await?;
    Ok(out)
}

/// Splits frames and decodes each header block as h2 would.
fn decode_blocks(bytes: &[u8]) -> Vec<(u8, Headers)> {
    assert!(bytes.starts_with(PREFACE));
    let mut rest = &bytes[PREFACE.len()..];
    let mut decoder = loona_hpack::Decoder::new();
    let mut blocks = Vec::new();
    let mut fragment = Vec::new();
    let mut first_flags = 0;
    while !rest.is_empty() {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let (kind, flags) = (rest[3], rest[4]);
        let payload = &rest[9..9 + len];
        if kind == HEADERS {
            first_flags = flags;
            fragment = header_fragment(flags, payload).unwrap().to_vec();
        } else if kind == CONTINUATION {
            fragment.extend_from_slice(payload);
        }
        if (kind == HEADERS || kind == CONTINUATION) && flags & END_HEADERS != 0 {
            blocks.push((first_flags, decoder.decode(&fragment).unwrap()));
        }
        rest = &rest[9 + len..];
    }
    blocks
}

fn connection(blocks: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    for (i, block) in blocks.iter().enumerate() {
        let stream = 1 + 2 * i as u32;
        bytes.extend(frame(HEADERS, END_HEADERS, stream, block));
        bytes.extend(frame(0x0, END_STREAM, stream, &[0, 0, 0, 0, 0])); // DATA
    }
    bytes
}

#[tokio::test]
async fn a_connection_with_a_valid_authority_passes_byte_for_byte() {
    let mut client = loona_hpack::Encoder::new();
    let blocks = [
        encode(&mut client, &request_headers(b"localhost")),
        encode(&mut client, &request_headers(b"localhost")),
    ];
    let bytes = connection(&blocks);
    for step in [1, 7, 4096] {
        assert_eq!(through_fix(bytes.clone(), step).await.unwrap(), bytes);
    }
}

#[tokio::test]
async fn a_socket_path_authority_becomes_localhost_and_nothing_else_changes() {
    // What grpc-core sends for unix:/run/attestd/api.sock.
    let mut client = loona_hpack::Encoder::new();
    let sent = [
        request_headers(b"run%2Fattestd%2Fapi.sock"),
        request_headers(b"run%2Fattestd%2Fapi.sock"),
    ];
    let blocks: Vec<Vec<u8>> = sent.iter().map(|h| encode(&mut client, h)).collect();
    for step in [1, 13, 65536] {
        let out = through_fix(connection(&blocks), step).await.unwrap();
        let decoded = decode_blocks(&out);
        assert_eq!(decoded.len(), 2);
        for (flags, headers) in decoded {
            assert_eq!(headers, request_headers(b"localhost"));
            assert_eq!(flags & END_HEADERS, END_HEADERS);
        }
        // Frames other than headers are untouched.
        assert!(out
            .windows(14)
            .any(|w| w == frame(0x0, END_STREAM, 3, &[0, 0, 0, 0, 0]).as_slice()));
    }
}

#[tokio::test]
async fn padded_prioritised_and_continued_blocks_are_read_whole() {
    let mut client = loona_hpack::Encoder::new();
    let mut headers = request_headers(b"tmp%2Fx.sock");
    headers.push((b"x-big".to_vec(), vec![b'a'; 20_000]));
    let block = encode(&mut client, &headers);
    let (head, tail) = block.split_at(100);
    let mut payload = vec![3u8]; // pad length
    payload.extend_from_slice(&[0, 0, 0, 0, 16]); // priority fields
    payload.extend_from_slice(head);
    payload.extend_from_slice(&[0, 0, 0]);
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(HEADERS, PADDED | PRIORITY | END_STREAM, 1, &payload));
    for (i, piece) in tail.chunks(9000).enumerate() {
        let last = (i + 1) * 9000 >= tail.len();
        bytes.extend(frame(
            CONTINUATION,
            if last { END_HEADERS } else { 0 },
            1,
            piece,
        ));
    }
    let out = through_fix(bytes, 500).await.unwrap();
    let decoded = decode_blocks(&out);
    let mut expected = request_headers(b"localhost");
    expected.push((b"x-big".to_vec(), vec![b'a'; 20_000]));
    assert_eq!(decoded.len(), 1);
    let (flags, headers) = &decoded[0];
    assert_eq!(flags & END_STREAM, END_STREAM, "END_STREAM is kept");
    assert!(*headers == expected, "the same headers, authority fixed");
}

#[tokio::test]
async fn broken_header_blocks_close_the_connection() {
    let mut client = loona_hpack::Encoder::new();
    let block = encode(&mut client, &request_headers(b"a%2Fb"));
    // A DATA frame in the middle of a header block.
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(HEADERS, 0, 1, &block[..10]));
    bytes.extend(frame(0x0, 0, 1, &[1]));
    assert!(through_fix(bytes, 64).await.is_err());
    // Garbage where HPACK should be.
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(
        HEADERS,
        END_HEADERS,
        1,
        &[0xff, 0xff, 0xff, 0xff, 0xff],
    ));
    assert!(through_fix(bytes, 64).await.is_err());
    // Padding longer than the frame.
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(HEADERS, END_HEADERS | PADDED, 1, &[200, 1, 2]));
    assert!(through_fix(bytes, 64).await.is_err());
}

#[tokio::test]
async fn what_is_not_http2_passes_untouched() {
    let bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    assert_eq!(through_fix(bytes.clone(), 3).await.unwrap(), bytes);
    // An oversized frame is left for h2 to refuse, not buffered.
    let mut bytes = PREFACE.to_vec();
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0x0, 0x0, 0, 0, 0, 1]);
    bytes.extend_from_slice(&[7; 100]);
    assert_eq!(through_fix(bytes.clone(), 50).await.unwrap(), bytes);
}
