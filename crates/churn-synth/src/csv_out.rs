//! Fast CSV formatting of synthetic rows in the dataset's column order (the 25 attributes and the label).
//!
//! Each location's leading columns (country … longitude) are formatted once, so a row costs a few
//! copies and integer formats; this is what lets `churnctl synth sample` write a million rows a second.

use churn_core::{Category, Field, HeaderStyle};

use crate::model::SynthModel;
use crate::sampler::SyntheticRow;

/// Formats rows of one model as CSV lines.
#[derive(Debug)]
pub struct CsvFormatter {
    /// "country,state,city,zip,lat,long," per location, CSV-escaped.
    location_prefix: Vec<Vec<u8>>,
}

fn push_field(out: &mut Vec<u8>, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(value.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(value.as_bytes());
    }
}

fn push_cents(out: &mut Vec<u8>, cents: u64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(cents / 100).as_bytes());
    let rest = cents % 100;
    out.push(b'.');
    out.push(b'0' + (rest / 10) as u8);
    out.push(b'0' + (rest % 10) as u8);
}

impl CsvFormatter {
    pub fn new(model: &SynthModel) -> Self {
        let mut ryu = ryu::Buffer::new();
        let location_prefix = model
            .locations
            .iter()
            .map(|l| {
                let mut out = Vec::with_capacity(96);
                for text in [&l.country, &l.state, &l.city, &l.zip_code] {
                    push_field(&mut out, text);
                    out.push(b',');
                }
                out.extend_from_slice(ryu.format(l.latitude).as_bytes());
                out.push(b',');
                out.extend_from_slice(ryu.format(l.longitude).as_bytes());
                out.push(b',');
                out
            })
            .collect();
        Self { location_prefix }
    }

    /// The header line (with its newline).
    pub fn header(style: HeaderStyle) -> Vec<u8> {
        let names: Vec<&str> = Field::ALL
            .iter()
            .map(|f| match style {
                HeaderStyle::Dataset => f.header(),
                HeaderStyle::Snake => f.name(),
            })
            .collect();
        let mut line = names.join(",").into_bytes();
        line.push(b'\n');
        line
    }

    /// Appends one row (with its newline) to `out`.
    pub fn write_row(&self, row: &SyntheticRow, out: &mut Vec<u8>) {
        fn field(out: &mut Vec<u8>, text: &str) {
            out.extend_from_slice(text.as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(&self.location_prefix[row.location as usize]);
        field(out, row.gender.label());
        field(out, row.senior_citizen.label());
        field(out, row.partner.label());
        field(out, row.dependents.label());
        field(out, itoa::Buffer::new().format(row.tenure_months));
        field(out, row.phone_service.label());
        field(out, row.multiple_lines.label());
        field(out, row.internet_service.label());
        for add_on in row.add_ons {
            field(out, add_on.label());
        }
        field(out, row.contract.label());
        field(out, row.paperless_billing.label());
        field(out, row.payment_method.label());
        push_cents(out, row.monthly_cents);
        out.push(b',');
        push_cents(out, row.total_cents);
        out.push(b',');
        out.extend_from_slice(row.churn_label.label().as_bytes());
        out.push(b'\n');
    }

    /// All rows of a chunk as CSV lines.
    pub fn format_chunk(&self, rows: &[SyntheticRow]) -> Vec<u8> {
        let mut out = Vec::with_capacity(rows.len() * 240);
        for row in rows {
            self.write_row(row, &mut out);
        }
        out
    }
}
