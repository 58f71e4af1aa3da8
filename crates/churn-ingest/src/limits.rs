//! The bounds a landed file is read within: line and record length, inflated size and ratio, columns.
//!
//! Every bound is checked on the bytes as they stream past, before a parser buffers them, so that what
//! one file can cost in memory is the bound and not the file: a 100 MB line stops after the first MiB, a
//! gzip bomb after a few MiB of output. A breach is an I/O error of kind `InvalidData` carrying a
//! [`LimitExceeded`], which the parser turns into the file's failure reason.

use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How much of a file is read before it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The longest line, in bytes (INGEST_MAX_LINE_BYTES).
    pub max_line_bytes: u64,
    /// The longest record, in bytes: a quoted field may span lines (INGEST_MAX_RECORD_BYTES).
    pub max_record_bytes: u64,
    /// The most bytes a gzip file may inflate to (INGEST_MAX_INFLATED_BYTES).
    pub max_inflated_bytes: u64,
    /// The most a gzip file may inflate per compressed byte, checked once it passed
    /// [`RATIO_CHECK_AFTER`] bytes of output (INGEST_MAX_INFLATION_RATIO).
    pub max_inflation_ratio: u64,
    /// The most columns a header may have (INGEST_MAX_COLUMNS).
    pub max_columns: usize,
}

/// Output a gzip file may produce before its ratio is judged: a small file's header and dictionary
/// make its first kilobytes inflate far beyond its average ratio.
pub const RATIO_CHECK_AFTER: u64 = 1 << 20;

impl Default for ReadLimits {
    fn default() -> Self {
        // A row of the dataset is about 400 bytes and a header 33 columns; CSV compresses about 5 to 20
        // times. Each default is far above a real file and far below what hurts a 2-core, few-GiB VM.
        Self {
            max_line_bytes: 1 << 20,
            max_record_bytes: 1 << 20,
            max_inflated_bytes: 16 << 30,
            max_inflation_ratio: 100,
            max_columns: 1_000,
        }
    }
}

/// A bound a file broke, in words for its failure reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} exceeds the limit of {limit} ({setting}); the file was not read further")]
pub struct LimitExceeded {
    pub what: String,
    pub limit: String,
    pub setting: &'static str,
}

impl LimitExceeded {
    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// The breach an I/O error carries, if it is one.
    pub fn in_io(error: &io::Error) -> Option<&LimitExceeded> {
        error.get_ref()?.downcast_ref::<LimitExceeded>()
    }
}

/// Bytes read since the last record ended; the parser resets it at each record.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordMeter(Arc<AtomicU64>);

impl RecordMeter {
    pub(crate) fn record_ended(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    fn add(&self, n: u64) -> u64 {
        self.0.fetch_add(n, Ordering::Relaxed) + n
    }
}

/// Counts the compressed bytes a gzip decoder consumes.
#[derive(Debug)]
pub(crate) struct Consumed<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> Consumed<R> {
    pub(crate) fn new(inner: R) -> (Self, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        let counter = Self {
            inner,
            count: Arc::clone(&count),
        };
        (counter, count)
    }
}

impl<R: Read> Read for Consumed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Consumed<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.count.fetch_add(amount as u64, Ordering::Relaxed);
        self.inner.consume(amount);
    }
}

/// A file's bytes (inflated, when it was gzip) read within [`ReadLimits`].
#[derive(Debug)]
pub(crate) struct Bounded<R> {
    inner: R,
    limits: ReadLimits,
    /// Compressed bytes consumed, for a gzip file.
    compressed: Option<Arc<AtomicU64>>,
    record: RecordMeter,
    line: u64,
    total: u64,
}

impl<R: Read> Bounded<R> {
    pub(crate) fn new(
        inner: R,
        limits: ReadLimits,
        compressed: Option<Arc<AtomicU64>>,
        record: RecordMeter,
    ) -> Self {
        Self {
            inner,
            limits,
            compressed,
            record,
            line: 0,
            total: 0,
        }
    }

    fn check(&self, longest_line: u64, record: u64) -> Result<(), LimitExceeded> {
        let ReadLimits {
            max_line_bytes,
            max_record_bytes,
            max_inflated_bytes,
            max_inflation_ratio,
            ..
        } = self.limits;
        // A gzip file's own bounds first: a bomb is named as one, whatever its bytes look like.
        if let Some(compressed) = &self.compressed {
            if self.total > max_inflated_bytes {
                return Err(LimitExceeded {
                    what: format!("the gzip file inflating to more than {} bytes", self.total),
                    limit: format!("{max_inflated_bytes} bytes"),
                    setting: "INGEST_MAX_INFLATED_BYTES",
                });
            }
            let compressed = compressed.load(Ordering::Relaxed).max(1);
            if self.total > RATIO_CHECK_AFTER && self.total / compressed > max_inflation_ratio {
                return Err(LimitExceeded {
                    what: format!(
                        "the gzip file inflating {} times ({} bytes from {compressed})",
                        self.total / compressed,
                        self.total
                    ),
                    limit: format!("{max_inflation_ratio} times"),
                    setting: "INGEST_MAX_INFLATION_RATIO",
                });
            }
        }
        if longest_line > max_line_bytes {
            return Err(LimitExceeded {
                what: format!("a line of more than {longest_line} bytes"),
                limit: format!("{max_line_bytes} bytes"),
                setting: "INGEST_MAX_LINE_BYTES",
            });
        }
        if record > max_record_bytes {
            return Err(LimitExceeded {
                what: format!("a record of more than {record} bytes"),
                limit: format!("{max_record_bytes} bytes"),
                setting: "INGEST_MAX_RECORD_BYTES",
            });
        }
        Ok(())
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // Every line this read completes counts, not only the one it leaves open.
        let mut longest = 0;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &buf[..n]) {
            longest = longest.max(self.line + (end - start) as u64);
            self.line = 0;
            start = end + 1;
        }
        self.line += (n - start) as u64;
        self.total += n as u64;
        let record = self.record.add(n as u64);
        self.check(longest.max(self.line), record)
            .map_err(LimitExceeded::into_io)?;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;

    fn read_all(reader: &mut impl Read) -> Result<u64, LimitExceeded> {
        let mut buf = vec![0u8; 8192];
        let mut total = 0;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n as u64,
                Err(e) => return Err(LimitExceeded::in_io(&e).unwrap().clone()),
            }
        }
    }

    fn limits() -> ReadLimits {
        ReadLimits {
            max_line_bytes: 1_000,
            max_record_bytes: 10_000,
            ..ReadLimits::default()
        }
    }

    #[test]
    fn a_long_line_is_refused_and_short_lines_of_any_number_pass() {
        let short = "a,b,c\n".repeat(100_000);
        let mut ok = Bounded::new(short.as_bytes(), limits(), None, RecordMeter::default());
        // The meter is never reset here, so the record bound is off for this part.
        ok.limits.max_record_bytes = u64::MAX;
        assert_eq!(read_all(&mut ok).unwrap(), short.len() as u64);

        let long = format!("a,b\n{}\n", "x".repeat(5_000));
        let mut refused = Bounded::new(long.as_bytes(), limits(), None, RecordMeter::default());
        let e = read_all(&mut refused).unwrap_err();
        assert_eq!(e.setting, "INGEST_MAX_LINE_BYTES");
        assert_eq!(e.limit, "1000 bytes");
    }

    #[test]
    fn a_record_spanning_lines_is_refused_unless_the_parser_ends_records() {
        let lines = "x\n".repeat(20_000);
        let meter = RecordMeter::default();
        let mut refused = Bounded::new(lines.as_bytes(), limits(), None, meter);
        assert_eq!(
            read_all(&mut refused).unwrap_err().setting,
            "INGEST_MAX_RECORD_BYTES"
        );

        let meter = RecordMeter::default();
        let mut ok = Bounded::new(lines.as_bytes(), limits(), None, meter.clone());
        let mut buf = [0u8; 512];
        while ok.read(&mut buf).unwrap() > 0 {
            meter.record_ended();
        }
    }

    #[test]
    fn a_gzip_bomb_stops_within_a_few_mib_of_output() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b'0'; 1 << 20];
        for _ in 0..64 {
            encoder.write_all(&zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        let (consumed, count) = Consumed::new(bomb.as_slice());
        let inflated = flate2::bufread::GzDecoder::new(consumed);
        let no_lines = ReadLimits {
            max_line_bytes: u64::MAX,
            max_record_bytes: u64::MAX,
            ..ReadLimits::default()
        };
        let mut reader = Bounded::new(inflated, no_lines, Some(count), RecordMeter::default());
        let e = read_all(&mut reader).unwrap_err();
        assert_eq!(e.setting, "INGEST_MAX_INFLATION_RATIO");
        assert_eq!(e.limit, "100 times");
        assert!(
            reader.total < RATIO_CHECK_AFTER + (1 << 20),
            "{}",
            reader.total
        );
    }
}
