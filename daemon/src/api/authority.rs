//! Makes the socket usable by gRPC clients that send the socket's path as the
//! HTTP/2 `:authority`.
//!
//! Over a Unix socket there is no host, and clients disagree on what to put in
//! `:authority`. grpc-go and tonic send `localhost`; grpc-core since 1.57
//! (Python, so py-spiffe, C++, Ruby), grpc-java and grpc-swift send the
//! percent-encoded socket path, e.g. `run%2Fattestd%2Fapi.sock`. The `h2`
//! crate under tonic refuses that value as a malformed authority and resets
//! every stream (RST_STREAM PROTOCOL_ERROR; hyperium/h2#487). SPIFFE clients
//! in those languages would then not work, though "existing clients work
//! unchanged" is the point of serving the Workload API.
//!
//! So, on the client-to-server direction only, this layer reads the first
//! header block of the connection. If its `:authority` is one the `http`
//! crate (h2's own check) accepts, the rest of the connection passes
//! untouched. If not, the connection switches to rewriting: each
//! header block is decoded, its `:authority` replaced by `localhost`, and
//! re-encoded with our own HPACK encoder after a dynamic-table reset, so that
//! h2's decoder and our encoder agree from then on. Nothing else changes: the
//! authority carries no meaning on a Unix socket, and the daemon never reads it.
//!
//! Hostile input gets nothing new from this: frames are bounded before they
//! are buffered, a malformed frame or header block closes the connection
//! (h2 would reset it anyway), and anything not understood passes through for
//! h2 to judge.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// h2's default SETTINGS_MAX_FRAME_SIZE, which tonic keeps: frames we emit
/// stay within it, and a larger incoming frame is left for h2 to refuse.
const MAX_FRAME_LEN: usize = 16_384;
/// A header block larger than this closes the connection (tonic's own limit
/// on header lists is far lower).
const MAX_BLOCK_LEN: usize = 256 * 1024;
/// HPACK dynamic table size h2 allows by default (SETTINGS_HEADER_TABLE_SIZE).
const TABLE_SIZE: usize = 4096;
/// Dynamic table size updates (RFC 7541 §6.3) to 0 and back to 4096: clears
/// h2's table so that it matches our fresh encoder.
const TABLE_RESET: [u8; 4] = [0x20, 0x3f, 0xe1, 0x1f];
const READ_CHUNK: usize = 16 * 1024;

enum Mode {
    /// Waiting for the connection preface.
    Preface,
    /// Following header blocks; none needed rewriting yet.
    Watching,
    /// Rewriting every header block.
    Rewriting(Box<loona_hpack::Encoder<'static>>),
    /// Not HTTP/2 as we know it, or nothing left to do: bytes pass untouched.
    Passthrough,
}

/// A header block being collected across HEADERS and CONTINUATION frames.
struct PendingBlock {
    stream_id: u32,
    flags: u8,
    fragment: Vec<u8>,
    /// The frames as received, for when the block passes untouched.
    raw: Vec<u8>,
}

pub struct AuthorityFix<S> {
    inner: S,
    mode: Mode,
    decoder: loona_hpack::Decoder<'static>,
    /// Received, not yet processed.
    input: Vec<u8>,
    /// Processed, not yet handed to the reader.
    output: Vec<u8>,
    output_at: usize,
    pending: Option<PendingBlock>,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(TABLE_SIZE);
        AuthorityFix {
            inner,
            mode: Mode::Preface,
            decoder,
            input: Vec::new(),
            output: Vec::new(),
            output_at: 0,
            pending: None,
        }
    }

    /// Moves whatever complete units `input` holds to `output`.
    fn process(&mut self) -> io::Result<()> {
        loop {
            match self.mode {
                Mode::Passthrough => {
                    self.output.append(&mut self.input);
                    return Ok(());
                }
                Mode::Preface => {
                    let have = self.input.len().min(PREFACE.len());
                    if self.input[..have] != PREFACE[..have] {
                        self.mode = Mode::Passthrough;
                        continue;
                    }
                    if have < PREFACE.len() {
                        return Ok(());
                    }
                    self.output.extend(self.input.drain(..PREFACE.len()));
                    self.mode = Mode::Watching;
                }
                Mode::Watching | Mode::Rewriting(_) => {
                    if self.input.len() < FRAME_HEADER_LEN {
                        return Ok(());
                    }
                    let len = usize::from(self.input[0]) << 16
                        | usize::from(self.input[1]) << 8
                        | usize::from(self.input[2]);
                    if len > MAX_FRAME_LEN {
                        if self.pending.is_some() {
                            return Err(malformed("oversized frame inside a header block"));
                        }
                        // h2 refuses it; we must not buffer it.
                        self.mode = Mode::Passthrough;
                        continue;
                    }
                    if self.input.len() < FRAME_HEADER_LEN + len {
                        return Ok(());
                    }
                    let frame: Vec<u8> = self.input.drain(..FRAME_HEADER_LEN + len).collect();
                    self.frame(frame)?;
                }
            }
        }
    }

    fn frame(&mut self, frame: Vec<u8>) -> io::Result<()> {
        let kind = frame[3];
        let flags = frame[4];
        let stream_id = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
        let payload = &frame[FRAME_HEADER_LEN..];
        match (kind, self.pending.as_mut()) {
            (HEADERS, None) => {
                let fragment = header_fragment(flags, payload)?;
                self.pending = Some(PendingBlock {
                    stream_id,
                    flags,
                    fragment: fragment.to_vec(),
                    raw: frame.clone(),
                });
            }
            (CONTINUATION, Some(pending)) if pending.stream_id == stream_id => {
                if pending.fragment.len() + payload.len() > MAX_BLOCK_LEN {
                    return Err(malformed("header block too large"));
                }
                pending.fragment.extend_from_slice(payload);
                pending.raw.extend_from_slice(&frame);
                pending.flags |= flags & END_HEADERS;
            }
            (_, Some(_)) => {
                return Err(malformed("a header block was interrupted by another frame"))
            }
            (_, None) => {
                self.output.extend_from_slice(&frame);
                return Ok(());
            }
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|pending| pending.flags & END_HEADERS != 0)
        {
            if let Some(block) = self.pending.take() {
                self.block(block)?;
            }
        }
        Ok(())
    }

    /// One complete header block.
    fn block(&mut self, block: PendingBlock) -> io::Result<()> {
        let headers = self
            .decoder
            .decode(&block.fragment)
            .map_err(|error| malformed(&format!("HPACK: {error:?}")))?;
        let bad_authority = headers
            .iter()
            .any(|(name, value)| name == b":authority" && !acceptable(value));
        let first_rewrite = match &self.mode {
            Mode::Watching if !bad_authority => {
                // A client sends one authority per connection: this one needs
                // nothing, so the rest of the connection passes untouched and
                // costs nothing more.
                self.output.extend_from_slice(&block.raw);
                self.mode = Mode::Passthrough;
                return Ok(());
            }
            Mode::Watching => {
                self.mode = Mode::Rewriting(Box::default());
                true
            }
            _ => false,
        };
        let Mode::Rewriting(encoder) = &mut self.mode else {
            return Ok(());
        };
        let mut encoded = Vec::new();
        if first_rewrite {
            encoded.extend_from_slice(&TABLE_RESET);
        }
        let rewritten = headers.iter().map(|(name, value)| {
            if name == b":authority" && !acceptable(value) {
                (name.as_slice(), b"localhost".as_slice())
            } else {
                (name.as_slice(), value.as_slice())
            }
        });
        encoder.encode_into(rewritten, &mut encoded)?;
        // HEADERS, then CONTINUATION frames, each within MAX_FRAME_LEN.
        let mut chunks = encoded.chunks(MAX_FRAME_LEN).peekable();
        let mut first = true;
        while let Some(chunk) = chunks.next() {
            let mut flags = if chunks.peek().is_none() {
                END_HEADERS
            } else {
                0
            };
            let kind = if first {
                flags |= block.flags & END_STREAM;
                HEADERS
            } else {
                CONTINUATION
            };
            first = false;
            let len = chunk.len();
            self.output.extend_from_slice(&[
                (len >> 16) as u8,
                (len >> 8) as u8,
                len as u8,
                kind,
                flags,
            ]);
            self.output
                .extend_from_slice(&block.stream_id.to_be_bytes());
            self.output.extend_from_slice(chunk);
        }
        Ok(())
    }
}

/// What h2 accepts as `:authority`.
fn acceptable(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

/// The header block fragment of a HEADERS frame: without padding and
/// priority fields (RFC 9113 §6.2).
fn header_fragment(flags: u8, payload: &[u8]) -> io::Result<&[u8]> {
    let mut start = 0;
    let mut end = payload.len();
    if flags & PADDED != 0 {
        let pad = usize::from(*payload.first().ok_or_else(|| malformed("no pad length"))?);
        start = 1;
        end = end
            .checked_sub(pad)
            .filter(|end| *end >= start)
            .ok_or_else(|| malformed("padding longer than the frame"))?;
    }
    if flags & PRIORITY != 0 {
        start += 5;
    }
    payload
        .get(start..end)
        .ok_or_else(|| malformed("HEADERS frame too short"))
}

fn malformed(reason: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed HTTP/2 from the client: {reason}"),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.output_at < this.output.len() {
                let available = &this.output[this.output_at..];
                let n = available.len().min(buf.remaining());
                buf.put_slice(&available[..n]);
                this.output_at += n;
                if this.output_at == this.output.len() {
                    this.output.clear();
                    this.output_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if matches!(this.mode, Mode::Passthrough) && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Ready(Ok(())) if chunk_buf.filled().is_empty() => {
                    // End of stream: hand over what is left as it is.
                    this.mode = Mode::Passthrough;
                    this.output.append(&mut this.input);
                    if let Some(pending) = this.pending.take() {
                        this.output.extend_from_slice(&pending.raw);
                    }
                    if this.output.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Ok(())) => {
                    this.input.extend_from_slice(chunk_buf.filled());
                    this.process()?;
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "authority_test.rs"]
mod authority_test;
