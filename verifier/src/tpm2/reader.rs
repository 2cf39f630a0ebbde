//! A bounds-checked big-endian cursor: the only place raw TPM bytes are
//! sliced, so no parser can index past the end of its input.

use super::ParseError;

pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], ParseError> {
        match self.rest.split_at_checked(len) {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(head)
            }
            None => Err(ParseError::Truncated {
                field,
                needed: len,
                available: self.rest.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ParseError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, ParseError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, ParseError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, ParseError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, ParseError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A TPM2B: u16 size then that many bytes. `max` is the spec's buffer size,
    /// checked before slicing so a lying size field cannot cause a large read.
    pub(crate) fn tpm2b(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], ParseError> {
        let size = usize::from(self.u16(field)?);
        if size > max {
            return Err(ParseError::TooLarge { field, size, max });
        }
        self.take(size, field)
    }

    /// Everything not yet read; used where a structure's tail is kept opaque.
    pub(crate) fn rest(self) -> &'a [u8] {
        self.rest
    }

    /// Ends a parse: leftover bytes mean the blob is not the structure we think.
    pub(crate) fn finish(self, structure: &'static str) -> Result<(), ParseError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ParseError::TrailingBytes {
                structure,
                count: self.rest.len(),
            })
        }
    }
}

#[cfg(test)]
#[path = "reader_test.rs"]
mod tests;
