//! Little helpers for the on-disk formats: varints and a bounds-checked reader of untrusted bytes.

pub(crate) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads untrusted bytes; every method fails with a reason instead of panicking.
pub(crate) struct Reader<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

pub(crate) type ReadResult<T> = Result<T, String>;

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub fn take(&mut self, n: usize) -> ReadResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("needs {n} bytes at offset {}, past the end", self.pos))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    pub fn array<const N: usize>(&mut self) -> ReadResult<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> ReadResult<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u32(&mut self) -> ReadResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> ReadResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn i128(&mut self) -> ReadResult<i128> {
        Ok(i128::from_le_bytes(self.array()?))
    }

    #[inline]
    pub fn varint(&mut self) -> ReadResult<u64> {
        // Lengths, ids and kinds are mostly below 128: one byte.
        if let Some(&b) = self.bytes.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> ReadResult<u64> {
        let start = self.pos;
        let mut result = 0u64;
        for i in 0..10 {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                break;
            }
            result |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(result);
            }
        }
        Err(format!("malformed varint at offset {start}"))
    }

    pub fn varint_u32(&mut self) -> ReadResult<u32> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| format!("{v} does not fit in 32 bits"))
    }

    /// A varint length followed by that many bytes.
    pub fn blob(&mut self) -> ReadResult<&'a [u8]> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| format!("length {n} is too large"))?;
        self.take(n)
    }
}
