//! What a table host call answers with: rows, encoded for the module only when it reads them.

use interstice_abi::varint_len;
use interstice_store::Row;

use super::{encode_row, row_encoded_len};

/// What a table host call answers with, kept as rows until the module reads it
/// (`read_result`): only then are they encoded, straight into a buffer the instance reuses. An
/// update's old row, which the SDK's `update` never reads, is thus never encoded at all.
#[derive(Debug)]
pub(crate) enum Answer {
    Bytes(Vec<u8>),
    /// A row, as a struct is encoded: its columns one after another.
    Row(Row),
    /// An `Option<row>`: a tag, then the row.
    MaybeRow(Option<Row>),
    /// A `Vec<row>`: the count, then the rows.
    Rows(Vec<Row>),
}

impl Default for Answer {
    fn default() -> Self {
        Answer::Bytes(Vec::new())
    }
}

impl From<Vec<u8>> for Answer {
    fn from(bytes: Vec<u8>) -> Self {
        Answer::Bytes(bytes)
    }
}

impl Answer {
    /// The length of the encoding, which the host call returns.
    pub fn len(&self) -> usize {
        match self {
            Answer::Bytes(b) => b.len(),
            Answer::Row(row) => row_encoded_len(row),
            Answer::MaybeRow(row) => 1 + row.as_deref().map_or(0, row_encoded_len),
            Answer::Rows(rows) => {
                varint_len(rows.len() as u64)
                    + rows.iter().map(|r| row_encoded_len(r)).sum::<usize>()
            }
        }
    }

    /// The encoding: borrowed when it is bytes already, else written into `buf`.
    pub fn encoded<'a>(&'a self, buf: &'a mut Vec<u8>) -> &'a [u8] {
        buf.clear();
        if let Answer::Bytes(b) = self {
            return b;
        }
        buf.reserve(self.len());
        match self {
            Answer::Bytes(_) => {}
            Answer::Row(row) => encode_row(row, buf),
            Answer::MaybeRow(None) => buf.push(0),
            Answer::MaybeRow(Some(row)) => {
                buf.push(1);
                encode_row(row, buf);
            }
            Answer::Rows(rows) => {
                interstice_abi::encode_varint(rows.len() as u64, buf);
                for row in rows {
                    encode_row(row, buf);
                }
            }
        }
        buf
    }
}
