//! Streaming CSV reading and writing of customer records in the IBM dataset's layout.
//!
//! The reader holds one row at a time, so a file of any size is checked in constant memory. It accepts a
//! UTF-8 byte-order mark, CRLF or LF line ends, and any of the header spellings [`Field::lookup`] knows.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use csv::{ByteRecord, ReaderBuilder};
use serde_json::Value;

use crate::Error;
use crate::customer::{Customer, Raw};
use crate::field::{Field, Key};
use crate::validation::{FieldError, ValidationErrors};

/// One valid data row.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// The file's own identifier column (CustomerID), when it has one.
    pub customer_id: Option<String>,
    pub customer: Customer,
}

/// Reads customers from CSV one row at a time.
#[derive(Debug)]
pub struct CustomerReader<R: Read> {
    inner: csv::Reader<R>,
    /// For each field, the column it is read from.
    columns: [Option<usize>; Field::ALL.len()],
    id_column: Option<usize>,
    header_len: usize,
    unknown_columns: Vec<String>,
    header: ByteRecord,
    record: ByteRecord,
    failed: bool,
}

impl CustomerReader<BufReader<File>> {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(|source| Error::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(BufReader::with_capacity(1 << 16, file))
    }
}

impl<R: Read> CustomerReader<R> {
    /// Reads the header and maps its columns to fields.
    pub fn new(reader: R) -> Result<Self, Error> {
        Self::with_max_columns(reader, usize::MAX)
    }

    /// [`CustomerReader::new`], refusing a header of more than `max_columns` columns before mapping
    /// them ([`Error::TooManyColumns`]).
    pub fn with_max_columns(reader: R, max_columns: usize) -> Result<Self, Error> {
        // Records end at '\n' only: with csv's default CRLF terminator a '\r' ends the record and the
        // line counter lags one line behind on CRLF files. The '\r' left on the last field is whitespace,
        // which every value and header is trimmed of anyway.
        let mut inner = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(reader);
        let mut header = ByteRecord::new();
        let has_header = inner
            .read_byte_record(&mut header)
            .map_err(|source| Error::Csv { line: 1, source })?;
        if !has_header || header.iter().all(|h| h.iter().all(u8::is_ascii_whitespace)) {
            return Err(Error::Empty);
        }
        if header.len() > max_columns {
            return Err(Error::TooManyColumns {
                found: header.len(),
                max: max_columns,
            });
        }

        let mut columns: [Option<usize>; Field::ALL.len()] = [None; Field::ALL.len()];
        let mut id_column = None;
        let mut unknown_columns = Vec::new();
        for (index, bytes) in header.iter().enumerate() {
            let name = std::str::from_utf8(bytes).map_err(|_| Error::HeaderNotUtf8 {
                column: index + 1,
                value: String::from_utf8_lossy(bytes).into_owned(),
            })?;
            let name = name.trim_start_matches('\u{feff}').trim();
            match Field::lookup(name) {
                Key::Field(field) => {
                    if let Some(first) = columns[field.index()] {
                        return Err(Error::DuplicateColumn {
                            name: name.to_owned(),
                            field: field.name(),
                            first: first + 1,
                            second: index + 1,
                        });
                    }
                    columns[field.index()] = Some(index);
                }
                Key::Ignored => {
                    if matches!(
                        crate::category::normalize_name(name).as_str(),
                        "customerid" | "customer_id"
                    ) {
                        id_column = Some(index);
                    }
                }
                Key::Unknown => unknown_columns.push(name.to_owned()),
            }
        }
        let missing: Vec<&'static str> = Field::ALL
            .iter()
            .filter(|f| !f.is_optional() && columns[f.index()].is_none())
            .map(|f| f.header())
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingColumns(missing));
        }
        Ok(Self {
            inner,
            columns,
            id_column,
            header_len: header.len(),
            unknown_columns,
            header,
            record: ByteRecord::new(),
            failed: false,
        })
    }

    /// The underlying reader, e.g. to read what follows the CSV data.
    pub fn into_inner(self) -> R {
        self.inner.into_inner()
    }

    /// Header columns that name no field and were skipped.
    pub fn unknown_columns(&self) -> &[String] {
        &self.unknown_columns
    }

    /// The header row as read.
    pub fn header(&self) -> &ByteRecord {
        &self.header
    }

    /// The fields of the row [`Iterator::next`] returned last, as read: a rejected row is quarantined
    /// with its original text.
    pub fn record(&self) -> &ByteRecord {
        &self.record
    }

    /// Whether the file has a churn-label column.
    pub fn has_label(&self) -> bool {
        self.columns[Field::ChurnLabel.index()].is_some()
    }

    fn parse_record(&self, line: u64) -> Result<CsvRow, Error> {
        let record = &self.record;
        if record.len() != self.header_len {
            return Err(Error::FieldCount {
                line,
                expected: self.header_len,
                found: record.len(),
            });
        }
        let mut texts: [Cow<'_, str>; Field::ALL.len()] =
            std::array::from_fn(|_| Cow::Borrowed(""));
        let mut encoding_errors = Vec::new();
        for field in Field::ALL {
            let Some(column) = self.columns[field.index()] else {
                continue;
            };
            let bytes = record.get(column).unwrap_or_default();
            texts[field.index()] = match std::str::from_utf8(bytes) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => {
                    let lossy = String::from_utf8_lossy(bytes).into_owned();
                    encoding_errors.push(FieldError::new(
                        field.name(),
                        Value::String(lossy.clone()),
                        "must be valid UTF-8 text",
                    ));
                    Cow::Owned(lossy)
                }
            };
        }
        let customer_id = self
            .id_column
            .and_then(|c| record.get(c))
            .map(|b| String::from_utf8_lossy(b).trim().to_owned())
            .filter(|s| !s.is_empty());
        let parsed = Customer::parse(|f| match self.columns[f.index()] {
            Some(_) => Raw::Text(&texts[f.index()]),
            None => Raw::Missing,
        });
        match parsed {
            Ok(customer) if encoding_errors.is_empty() => Ok(CsvRow {
                line,
                customer_id,
                customer,
            }),
            result => {
                // A field that was not UTF-8 is reported as such, not also as whatever its lossy text broke.
                let mut errors = encoding_errors;
                if let Err(ValidationErrors(others)) = result {
                    let others: Vec<FieldError> = others
                        .into_iter()
                        .filter(|e| !errors.iter().any(|u| u.field == e.field))
                        .collect();
                    errors.extend(others);
                }
                Err(Error::InvalidRow {
                    line,
                    customer_id,
                    errors: ValidationErrors(errors),
                })
            }
        }
    }
}

impl<R: Read> Iterator for CustomerReader<R> {
    type Item = Result<CsvRow, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            // Where the next record starts (the reader stands at the start of the line after the last
            // record): the line an error in it is reported at.
            let line = self.inner.position().line();
            match self.inner.read_byte_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {
                    let line = self.record.position().map_or(line, |p| p.line());
                    // A blank line (e.g. a trailing newline pair) is not a record.
                    if self.record.len() == 1 && self.record[0].trim_ascii().is_empty() {
                        continue;
                    }
                    return Some(self.parse_record(line));
                }
                Err(source) => {
                    // An I/O error leaves the stream in an unknown place: stop after reporting it.
                    self.failed = true;
                    return Some(Err(Error::Csv { line, source }));
                }
            }
        }
    }
}

/// Reads every customer of a file, failing on the first invalid row (whose error names its line).
pub fn read_customers(path: &Path) -> Result<Vec<Customer>, Error> {
    let customers = CustomerReader::open(path)?
        .map(|row| row.map(|r| r.customer))
        .collect::<Result<Vec<_>, _>>()?;
    if customers.is_empty() {
        return Err(Error::NoRows);
    }
    Ok(customers)
}

/// Which names the CSV header uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderStyle {
    /// The IBM dataset's headers ("Tenure Months").
    #[default]
    Dataset,
    /// snake_case ("tenure_months").
    Snake,
}

/// Writes customers as CSV in the dataset's column order.
#[derive(Debug)]
pub struct CustomerWriter<W: Write> {
    inner: csv::Writer<W>,
    with_label: bool,
}

impl<W: Write> CustomerWriter<W> {
    /// Writes the header at once; `with_label` adds the churn-label column.
    pub fn new(writer: W, style: HeaderStyle, with_label: bool) -> Result<Self, Error> {
        let mut inner = csv::Writer::from_writer(writer);
        let header = Field::ALL
            .iter()
            .filter(|f| with_label || **f != Field::ChurnLabel)
            .map(|f| match style {
                HeaderStyle::Dataset => f.header(),
                HeaderStyle::Snake => f.name(),
            });
        inner.write_record(header).map_err(Error::Write)?;
        Ok(Self { inner, with_label })
    }

    pub fn write(&mut self, customer: &Customer) -> Result<(), Error> {
        for field in Field::ALL {
            if *field == Field::ChurnLabel && !self.with_label {
                continue;
            }
            self.inner
                .write_field(customer.field_text(*field).as_bytes())
                .map_err(Error::Write)?;
        }
        self.inner.write_record(None::<&[u8]>).map_err(Error::Write)
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W, Error> {
        self.inner
            .into_inner()
            .map_err(|e| Error::Write(csv::Error::from(e.into_error())))
    }
}
