//! The customer record and its parser, which checks types, categories, ranges and business rules at once.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::category::{
    AddOn, Category, Contract, Gender, InternetService, MultipleLines, PaymentMethod, YesNo,
};
use crate::field::{Field, Key};
use crate::validation::{
    FieldError, MAX_MONTHLY_CHARGES, MAX_TENURE_MONTHS, MAX_TEXT_LEN, MAX_TOTAL_CHARGES,
    ValidationErrors,
};

/// One Telco customer: the 25 attributes of the IBM dataset and, when known, whether they churned.
///
/// Serializes to snake_case keys with the dataset's labels as values. Deserializing goes through
/// [`Customer::from_json`], so it accepts the dataset's headers and the original API's names too.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Customer {
    pub country: String,
    pub state: String,
    pub city: String,
    /// Five digits, kept as text so leading zeros survive.
    pub zip_code: String,
    pub latitude: f64,
    pub longitude: f64,
    pub gender: Gender,
    pub senior_citizen: YesNo,
    pub partner: YesNo,
    pub dependents: YesNo,
    pub tenure_months: u32,
    pub phone_service: YesNo,
    pub multiple_lines: MultipleLines,
    pub internet_service: InternetService,
    pub online_security: AddOn,
    pub online_backup: AddOn,
    pub device_protection: AddOn,
    pub tech_support: AddOn,
    pub streaming_tv: AddOn,
    pub streaming_movies: AddOn,
    pub contract: Contract,
    pub paperless_billing: YesNo,
    pub payment_method: PaymentMethod,
    pub monthly_charges: f64,
    /// Blank in the dataset for customers in their first month; read as 0.0 then.
    pub total_charges: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn_label: Option<YesNo>,
}

/// The six internet add-on fields, in dataset order.
pub const ADD_ON_FIELDS: [Field; 6] = [
    Field::OnlineSecurity,
    Field::OnlineBackup,
    Field::DeviceProtection,
    Field::TechSupport,
    Field::StreamingTv,
    Field::StreamingMovies,
];

/// A field's value as a reader found it, before parsing.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    Missing,
    /// A CSV cell: every value is text, numbers included.
    Text(&'a str),
    /// A JSON string: text for text and category fields, but not a number (JSON has numbers for that).
    JsonStr(&'a str),
    Json(&'a Value),
}

impl<'a> Raw<'a> {
    fn to_value(self) -> Value {
        match self {
            Raw::Missing => Value::Null,
            Raw::Text(s) | Raw::JsonStr(s) => Value::String(s.to_owned()),
            Raw::Json(v) => v.clone(),
        }
    }

    /// Text a number may be read from: a CSV cell only; in JSON a number must be a JSON number.
    fn numeric_text(self) -> Option<&'a str> {
        match self {
            Raw::Text(s) => Some(s.trim()),
            _ => None,
        }
    }

    /// Text with surrounding whitespace removed; `None` for missing, null, blank, or a non-string JSON value
    /// (the caller decides whether numbers or booleans are acceptable).
    fn text(self) -> Option<&'a str> {
        match self {
            Raw::Text(s) | Raw::JsonStr(s) => Some(s.trim()),
            Raw::Json(Value::String(s)) => Some(s.trim()),
            _ => None,
        }
    }

    fn is_blank(self) -> bool {
        match self {
            Raw::Missing | Raw::Json(Value::Null) => true,
            Raw::Text(s) | Raw::JsonStr(s) => s.trim().is_empty(),
            Raw::Json(Value::String(s)) => s.trim().is_empty(),
            Raw::Json(_) => false,
        }
    }

    /// Whether the value came from JSON (where numbers are typed).
    fn is_json(self) -> bool {
        matches!(self, Raw::JsonStr(_) | Raw::Json(_))
    }
}

/// Collects every problem while parsing one record.
struct Parser<'a, F: Fn(Field) -> Raw<'a>> {
    get: F,
    errors: Vec<FieldError>,
}

impl<'a, F: Fn(Field) -> Raw<'a>> Parser<'a, F> {
    fn fail(&mut self, field: Field, raw: Raw<'a>, rule: impl Into<String>) {
        self.errors
            .push(FieldError::new(field.name(), raw.to_value(), rule));
    }

    /// The raw value, or a "required" error when it is blank.
    fn required(&mut self, field: Field) -> Option<Raw<'a>> {
        let raw = (self.get)(field);
        if raw.is_blank() {
            self.fail(field, raw, "is required");
            None
        } else {
            Some(raw)
        }
    }

    fn text(&mut self, field: Field) -> Option<String> {
        let raw = self.required(field)?;
        let Some(s) = raw.text() else {
            self.fail(field, raw, "must be a string");
            return None;
        };
        // The limit counts the value as given, surrounding blanks included.
        let given = match raw {
            Raw::Text(t) | Raw::JsonStr(t) => t,
            Raw::Json(Value::String(t)) => t.as_str(),
            _ => s,
        };
        if given.chars().count() > MAX_TEXT_LEN {
            self.fail(
                field,
                raw,
                format!("must be at most {MAX_TEXT_LEN} characters"),
            );
            None
        } else if s.chars().any(char::is_control) {
            self.fail(field, raw, "must not contain control characters");
            None
        } else {
            Some(s.to_owned())
        }
    }

    fn zip_code(&mut self, field: Field) -> Option<String> {
        let raw = self.required(field)?;
        let text = match raw {
            Raw::Json(Value::Number(n)) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && (0.0..=99_999.0).contains(f))
                        .map(|f| f as u64)
                })
                .map(|z| format!("{z:05}")),
            _ => raw.text().map(str::to_owned),
        };
        match text {
            Some(z) if z.len() == 5 && z.bytes().all(|b| b.is_ascii_digit()) => Some(z),
            _ => {
                self.fail(field, raw, "must be a 5-digit US zip code");
                None
            }
        }
    }

    /// A finite number within `min..=max`.
    fn number(&mut self, raw: Raw<'a>, field: Field, min: f64, max: Option<f64>) -> Option<f64> {
        let parsed = match raw {
            Raw::Json(Value::Number(n)) => n.as_f64(),
            _ => raw.numeric_text().and_then(|s| s.parse::<f64>().ok()),
        };
        let Some(x) = parsed else {
            self.fail(field, raw, "must be a number");
            return None;
        };
        if !x.is_finite() {
            self.fail(field, raw, "must be a finite number");
            return None;
        }
        if x < min {
            let rule = match max {
                Some(max) => format!("must be at least {min} and at most {max}"),
                None => format!("must be at least {min}"),
            };
            self.fail(field, raw, rule);
            return None;
        }
        if let Some(max) = max
            && x > max
        {
            self.fail(field, raw, format!("must be between {min} and {max}"));
            return None;
        }
        Some(x)
    }

    fn required_number(&mut self, field: Field, min: f64, max: Option<f64>) -> Option<f64> {
        let raw = self.required(field)?;
        self.number(raw, field, min, max)
    }

    fn tenure(&mut self) -> Option<u32> {
        let field = Field::TenureMonths;
        let raw = self.required(field)?;
        let parsed = match raw {
            // 12.0 is a whole number too (JSON does not tell integers from floats).
            Raw::Json(Value::Number(n)) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                    .map(|f| f as i64)
            }),
            _ => raw.numeric_text().and_then(|s| s.parse::<i64>().ok()),
        };
        match parsed {
            Some(t) if (0..=i64::from(MAX_TENURE_MONTHS)).contains(&t) => u32::try_from(t).ok(),
            Some(_) => {
                self.fail(
                    field,
                    raw,
                    format!("must be a whole number of months between 0 and {MAX_TENURE_MONTHS}"),
                );
                None
            }
            None => {
                self.fail(field, raw, "must be a whole number of months");
                None
            }
        }
    }

    fn category<T: Category>(&mut self, field: Field) -> Option<T> {
        let raw = self.required(field)?;
        let parsed = raw.text().and_then(T::parse);
        if parsed.is_none() {
            self.fail(field, raw, T::allowed());
        }
        parsed
    }

    fn yes_no_value(&mut self, field: Field, raw: Raw<'a>) -> Option<YesNo> {
        let parsed = match raw {
            Raw::Json(Value::Bool(b)) => Some(YesNo::from_bool(*b)),
            Raw::Json(Value::Number(n)) => match n.as_u64() {
                Some(0) => Some(YesNo::No),
                Some(1) => Some(YesNo::Yes),
                _ => None,
            },
            _ => raw.text().and_then(|s| match s {
                "0" => Some(YesNo::No),
                "1" => Some(YesNo::Yes),
                _ => YesNo::parse(s).or_else(|| match s.to_ascii_lowercase().as_str() {
                    "true" => Some(YesNo::Yes),
                    "false" => Some(YesNo::No),
                    _ => None,
                }),
            }),
        };
        if parsed.is_none() {
            self.fail(
                field,
                raw,
                "must be \"Yes\" or \"No\" (true/false and 1/0 also accepted)",
            );
        }
        parsed
    }

    fn yes_no(&mut self, field: Field) -> Option<YesNo> {
        let raw = self.required(field)?;
        self.yes_no_value(field, raw)
    }
}

impl Customer {
    /// A valid customer (the first of the seed data), for documentation and examples.
    pub fn example() -> Customer {
        Customer {
            country: "United States".into(),
            state: "California".into(),
            city: "Los Angeles".into(),
            zip_code: "90003".into(),
            latitude: 33.964131,
            longitude: -118.272783,
            gender: crate::Gender::Male,
            senior_citizen: YesNo::No,
            partner: YesNo::No,
            dependents: YesNo::No,
            tenure_months: 2,
            phone_service: YesNo::Yes,
            multiple_lines: MultipleLines::No,
            internet_service: InternetService::Dsl,
            online_security: AddOn::Yes,
            online_backup: AddOn::Yes,
            device_protection: AddOn::No,
            tech_support: AddOn::No,
            streaming_tv: AddOn::No,
            streaming_movies: AddOn::No,
            contract: crate::Contract::MonthToMonth,
            paperless_billing: YesNo::Yes,
            payment_method: crate::PaymentMethod::MailedCheck,
            monthly_charges: 53.85,
            total_charges: 108.15,
            churn_label: None,
        }
    }

    /// Parses and validates one record, reporting every problem at once.
    ///
    /// `get` returns each field's raw value; readers of CSV rows and JSON objects both go through here so
    /// that one set of rules applies everywhere.
    pub fn parse<'a>(get: impl Fn(Field) -> Raw<'a>) -> Result<Customer, ValidationErrors> {
        Self::parse_with(get, Vec::new())
    }

    pub(crate) fn parse_with<'a>(
        get: impl Fn(Field) -> Raw<'a>,
        errors: Vec<FieldError>,
    ) -> Result<Customer, ValidationErrors> {
        let mut p = Parser { get, errors };
        let country = p.text(Field::Country);
        let state = p.text(Field::State);
        let city = p.text(Field::City);
        let zip_code = p.zip_code(Field::ZipCode);
        let latitude = p.required_number(Field::Latitude, -90.0, Some(90.0));
        let longitude = p.required_number(Field::Longitude, -180.0, Some(180.0));
        let gender = p.category::<Gender>(Field::Gender);
        let senior_citizen = p.yes_no(Field::SeniorCitizen);
        let partner = p.yes_no(Field::Partner);
        let dependents = p.yes_no(Field::Dependents);
        let tenure_months = p.tenure();
        let phone_service = p.yes_no(Field::PhoneService);
        let multiple_lines = p.category::<MultipleLines>(Field::MultipleLines);
        let internet_service = p.category::<InternetService>(Field::InternetService);
        let add_ons = ADD_ON_FIELDS.map(|f| p.category::<AddOn>(f));
        let contract = p.category::<Contract>(Field::Contract);
        let paperless_billing = p.yes_no(Field::PaperlessBilling);
        let payment_method = p.category::<PaymentMethod>(Field::PaymentMethod);
        let monthly_charges =
            p.required_number(Field::MonthlyCharges, 0.0, Some(MAX_MONTHLY_CHARGES));

        let total_raw = (p.get)(Field::TotalCharges);
        // The blank-means-zero rule is the dataset's (a CSV cell); in JSON the number is required.
        let total_charges = if total_raw.is_json() || matches!(total_raw, Raw::Missing) {
            p.required_number(Field::TotalCharges, 0.0, Some(MAX_TOTAL_CHARGES))
        } else if total_raw.is_blank() {
            match tenure_months {
                // The dataset leaves Total Charges blank for customers in their first month: nothing has
                // been billed yet, so the blank means 0.0.
                Some(0) => Some(0.0),
                Some(_) => {
                    p.fail(
                        Field::TotalCharges,
                        total_raw,
                        "is required when tenure_months is above 0 (blank only for new customers)",
                    );
                    None
                }
                None => None,
            }
        } else {
            p.number(total_raw, Field::TotalCharges, 0.0, Some(MAX_TOTAL_CHARGES))
        };

        let label_raw = (p.get)(Field::ChurnLabel);
        // Unknown label: absent or null in JSON, a blank cell in CSV.
        let unknown = match label_raw {
            Raw::Missing | Raw::Json(Value::Null) => true,
            Raw::Text(t) => t.trim().is_empty(),
            _ => false,
        };
        let churn_label = if unknown {
            Some(None)
        } else {
            p.yes_no_value(Field::ChurnLabel, label_raw).map(Some)
        };

        // Business rules, checked only where the fields involved parsed, so one typo is not reported twice.
        if let (Some(phone), Some(lines)) = (phone_service, multiple_lines) {
            let no_phone = lines == MultipleLines::NoPhoneService;
            if phone == YesNo::No && !no_phone {
                let raw = (p.get)(Field::MultipleLines);
                p.fail(
                    Field::MultipleLines,
                    raw,
                    "must be \"No phone service\" when phone_service is \"No\"",
                );
            } else if phone == YesNo::Yes && no_phone {
                let raw = (p.get)(Field::MultipleLines);
                p.fail(
                    Field::MultipleLines,
                    raw,
                    "must not be \"No phone service\" when phone_service is \"Yes\"",
                );
            }
        }
        if let Some(internet) = internet_service {
            for (field, add_on) in ADD_ON_FIELDS.iter().zip(add_ons) {
                let Some(add_on) = add_on else { continue };
                let no_internet = add_on == AddOn::NoInternetService;
                if internet == InternetService::No && !no_internet {
                    let raw = (p.get)(*field);
                    p.fail(
                        *field,
                        raw,
                        "must be \"No internet service\" when internet_service is \"No\"",
                    );
                } else if internet != InternetService::No && no_internet {
                    let raw = (p.get)(*field);
                    p.fail(
                        *field,
                        raw,
                        format!(
                            "must not be \"No internet service\" when internet_service is {:?}",
                            internet.label()
                        ),
                    );
                }
            }
        }

        let [
            online_security,
            online_backup,
            device_protection,
            tech_support,
            streaming_tv,
            streaming_movies,
        ] = add_ons;
        if !p.errors.is_empty() {
            return Err(ValidationErrors(p.errors));
        }
        match (|| {
            Some(Customer {
                country: country?,
                state: state?,
                city: city?,
                zip_code: zip_code?,
                latitude: latitude?,
                longitude: longitude?,
                gender: gender?,
                senior_citizen: senior_citizen?,
                partner: partner?,
                dependents: dependents?,
                tenure_months: tenure_months?,
                phone_service: phone_service?,
                multiple_lines: multiple_lines?,
                internet_service: internet_service?,
                online_security: online_security?,
                online_backup: online_backup?,
                device_protection: device_protection?,
                tech_support: tech_support?,
                streaming_tv: streaming_tv?,
                streaming_movies: streaming_movies?,
                contract: contract?,
                paperless_billing: paperless_billing?,
                payment_method: payment_method?,
                monthly_charges: monthly_charges?,
                total_charges: total_charges?,
                churn_label: churn_label?,
            })
        })() {
            Some(c) => Ok(c),
            // Every `None` above recorded an error, so this arm is unreachable; it stays total anyway.
            None => Err(ValidationErrors(vec![FieldError::new(
                "record",
                Value::Null,
                "could not be parsed",
            )])),
        }
    }

    /// Parses a JSON object whose keys may be snake_case, the dataset's headers or the original API's names.
    ///
    /// Known extra keys (CustomerID, Lat_Long, Churn Score, …) are ignored; unknown keys and a key given
    /// twice under two spellings are errors, reported together with every other problem of the record.
    pub fn from_json(value: &Value) -> Result<Customer, ValidationErrors> {
        let Value::Object(map) = value else {
            return Err(ValidationErrors(vec![FieldError::new(
                "$",
                Value::String(crate::validation::json_type(value).into()),
                "must be a JSON object of customer fields",
            )]));
        };
        Self::from_json_map(map)
    }

    pub fn from_json_map(map: &Map<String, Value>) -> Result<Customer, ValidationErrors> {
        let mut slots: [Option<(&str, &Value)>; Field::ALL.len()] = [None; Field::ALL.len()];
        let mut errors = Vec::new();
        let mut unknown = crate::validation::UnknownKeys::default();
        for (key, value) in map {
            match Field::lookup(key) {
                Key::Field(field) => {
                    let slot = &mut slots[field.index()];
                    if let Some((first, _)) = slot {
                        errors.push(FieldError::new(
                            field.name(),
                            Value::String(key.clone()),
                            format!("is given twice (as {first:?} and {key:?})"),
                        ));
                    } else {
                        *slot = Some((key.as_str(), value));
                    }
                }
                Key::Ignored => {}
                Key::Unknown => unknown.push(&mut errors, key, value.clone()),
            }
        }
        unknown.finish(&mut errors);
        Self::parse_with(
            |f| match slots[f.index()] {
                Some((_, v)) => Raw::Json(v),
                None => Raw::Missing,
            },
            errors,
        )
    }

    /// The six internet add-ons in dataset order.
    pub fn add_ons(&self) -> [AddOn; 6] {
        [
            self.online_security,
            self.online_backup,
            self.device_protection,
            self.tech_support,
            self.streaming_tv,
            self.streaming_movies,
        ]
    }

    /// The value of `field` as the dataset writes it ("Fiber optic", "53.85", …); empty for no label.
    pub fn field_text(&self, field: Field) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow::{Borrowed, Owned};
        match field {
            Field::Country => Borrowed(&self.country),
            Field::State => Borrowed(&self.state),
            Field::City => Borrowed(&self.city),
            Field::ZipCode => Borrowed(&self.zip_code),
            Field::Latitude => Owned(self.latitude.to_string()),
            Field::Longitude => Owned(self.longitude.to_string()),
            Field::Gender => Borrowed(self.gender.label()),
            Field::SeniorCitizen => Borrowed(self.senior_citizen.label()),
            Field::Partner => Borrowed(self.partner.label()),
            Field::Dependents => Borrowed(self.dependents.label()),
            Field::TenureMonths => Owned(self.tenure_months.to_string()),
            Field::PhoneService => Borrowed(self.phone_service.label()),
            Field::MultipleLines => Borrowed(self.multiple_lines.label()),
            Field::InternetService => Borrowed(self.internet_service.label()),
            Field::OnlineSecurity => Borrowed(self.online_security.label()),
            Field::OnlineBackup => Borrowed(self.online_backup.label()),
            Field::DeviceProtection => Borrowed(self.device_protection.label()),
            Field::TechSupport => Borrowed(self.tech_support.label()),
            Field::StreamingTv => Borrowed(self.streaming_tv.label()),
            Field::StreamingMovies => Borrowed(self.streaming_movies.label()),
            Field::Contract => Borrowed(self.contract.label()),
            Field::PaperlessBilling => Borrowed(self.paperless_billing.label()),
            Field::PaymentMethod => Borrowed(self.payment_method.label()),
            Field::MonthlyCharges => Owned(self.monthly_charges.to_string()),
            Field::TotalCharges => Owned(self.total_charges.to_string()),
            Field::ChurnLabel => Borrowed(self.churn_label.map_or("", YesNo::label)),
        }
    }
}

impl<'de> Deserialize<'de> for Customer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Customer::from_json(&value).map_err(serde::de::Error::custom)
    }
}
