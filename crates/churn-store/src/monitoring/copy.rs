//! Decoding of `COPY … TO STDOUT (FORMAT binary)` as it streams in, for reads too big for the query
//! protocol.

use futures::TryStreamExt;

use crate::Error;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01), the origin of binary timestamps.
pub(super) const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

pub(super) fn copy_error(reason: &str) -> Error {
    Error::Database(sqlx::Error::Protocol(format!(
        "unexpected binary COPY data: {reason}"
    )))
}

pub(super) fn fixed<const N: usize>(field: &[u8]) -> Result<[u8; N], Error> {
    field
        .try_into()
        .map_err(|_| copy_error("a field has the wrong width"))
}

/// Runs `COPY (…) TO STDOUT (FORMAT binary)` and hands each tuple's fields (`None` for NULL) to `row`,
/// decoding as the data streams in so memory holds one network chunk, not the result.
pub(super) async fn copy_out_binary(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    mut row: impl FnMut(&[Option<&[u8]>]) -> Result<(), Error>,
) -> Result<(), Error> {
    const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
    let mut stream = conn.copy_out_raw(statement).await?;
    let mut buf: Vec<u8> = Vec::new();
    let mut header_done = false;
    let mut finished = false;
    while let Some(chunk) = stream.try_next().await? {
        buf.extend_from_slice(&chunk);
        let mut fields: Vec<Option<&[u8]>> = Vec::new();
        let mut pos = 0;
        if !header_done {
            // Signature, flags, then a header extension of the length that follows.
            if buf.len() < SIGNATURE.len() + 8 {
                continue;
            }
            if !buf.starts_with(SIGNATURE) {
                return Err(copy_error("no PGCOPY signature"));
            }
            let ext = u32::from_be_bytes(fixed(&buf[15..19])?) as usize;
            if buf.len() < 19 + ext {
                continue;
            }
            pos = 19 + ext;
            header_done = true;
        }
        loop {
            let rest = &buf[pos..];
            if rest.len() < 2 {
                break;
            }
            let count = i16::from_be_bytes([rest[0], rest[1]]);
            if count == -1 {
                finished = true;
                pos = buf.len();
                break;
            }
            let mut at = 2;
            let mut complete = true;
            fields.clear();
            for _ in 0..count.max(0) {
                if rest.len() < at + 4 {
                    complete = false;
                    break;
                }
                let len = i32::from_be_bytes(fixed(&rest[at..at + 4])?);
                at += 4;
                if len < 0 {
                    fields.push(None);
                    continue;
                }
                let len = len as usize;
                if rest.len() < at + len {
                    complete = false;
                    break;
                }
                fields.push(Some(&rest[at..at + len]));
                at += len;
            }
            if !complete {
                break;
            }
            row(&fields)?;
            pos += at;
        }
        drop(fields);
        buf.drain(..pos);
    }
    if !finished {
        return Err(copy_error("the stream ended before its trailer"));
    }
    Ok(())
}
