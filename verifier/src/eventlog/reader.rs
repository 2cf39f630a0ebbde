//! A bounds-checked little-endian cursor for the firmware and kernel logs.
//! TPM structures are big-endian (see `tpm2::reader`); the TCG event log and
//! the IMA log are written by the platform in its own byte order, which on
//! every platform we attest is little-endian. Both log parsers slice raw
//! bytes only through this type.

use crate::tpm2::ParseError;

pub(crate) struct LeReader<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> LeReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            offset: 0,
        }
    }

    /// Bytes consumed so far: the offset errors and padding checks report.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], ParseError> {
        match self.rest.split_at_checked(len) {
            Some((head, tail)) => {
                self.rest = tail;
                self.offset += len;
                Ok(head)
            }
            None => Err(ParseError::Truncated {
                field,
                needed: len,
                available: self.rest.len(),
            }),
        }
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], ParseError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, ParseError> {
        Ok(u8::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, ParseError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, ParseError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, ParseError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// A u32 length then that many bytes. `max` is checked before slicing, so
    /// a lying length field costs nothing and never allocates.
    pub(crate) fn u32_prefixed(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], ParseError> {
        let size = usize::try_from(self.u32(field)?).unwrap_or(usize::MAX);
        self.sized(size, max, field)
    }

    /// `size` bytes, refused up front when above `max`.
    pub(crate) fn sized(
        &mut self,
        size: usize,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], ParseError> {
        if size > max {
            return Err(ParseError::TooLarge { field, size, max });
        }
        self.take(size, field)
    }
}

#[cfg(test)]
#[path = "reader_test.rs"]
mod tests;
