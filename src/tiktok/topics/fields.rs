//! Reading the fields of a topic's `data` object one by one.
//!
//! Each topic struct is filled by asking for its fields by name with the tolerant
//! readers of [`crate::tiktok::ids`], instead of deriving `Deserialize`. That keeps two
//! promises a derive would break: a bad field is reported by its path and by what was
//! expected (`data.update_time must be a Unix time`), never by echoing the value, which
//! may be a buyer's data; and every number is read from its raw text, never an `f64`.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::value::RawValue;

use crate::tiktok::ids::{self, Expected, Id, JsonKind};
use crate::tiktok::status::OrderStatus;

/// A field of a known topic whose value no tolerant reader accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    path: String,
    expected: Expected,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` must be {}", self.path, self.expected)
    }
}

/// The members of one JSON object, each kept as raw JSON text until asked for.
pub struct Fields<'a> {
    path: String,
    members: BTreeMap<String, &'a RawValue>,
}

impl<'a> Fields<'a> {
    /// Reads a topic's `data`. A missing or `null` `data` reads as an object with no
    /// fields (every field `None`), since the envelope alone is still worth storing.
    pub fn data(raw: Option<&'a RawValue>) -> Result<Fields<'a>, FieldError> {
        match raw {
            None => Ok(Fields::empty("data")),
            Some(raw) => Ok(Fields::object("data", raw)?.unwrap_or_else(|| Fields::empty("data"))),
        }
    }

    fn empty(path: &str) -> Fields<'a> {
        Fields {
            path: path.to_owned(),
            members: BTreeMap::new(),
        }
    }

    /// `None` for `null`. A key given twice keeps its last value, as most JSON readers do.
    fn object(path: &str, raw: &'a RawValue) -> Result<Option<Fields<'a>>, FieldError> {
        let error = FieldError {
            path: path.to_owned(),
            expected: "an object",
        };
        match JsonKind::of(raw) {
            JsonKind::Null => Ok(None),
            JsonKind::Object => {
                let members = serde_json::from_str(raw.get()).map_err(|_| error)?;
                Ok(Some(Fields {
                    path: path.to_owned(),
                    members,
                }))
            }
            _ => Err(error),
        }
    }

    fn path_of(&self, name: &str) -> String {
        format!("{}.{}", self.path, name)
    }

    fn read<T>(
        &self,
        name: &str,
        reader: fn(&RawValue) -> Result<Option<T>, Expected>,
    ) -> Result<Option<T>, FieldError> {
        match self.members.get(name) {
            None => Ok(None),
            Some(raw) => reader(raw).map_err(|expected| FieldError {
                path: self.path_of(name),
                expected,
            }),
        }
    }

    pub fn id(&self, name: &str) -> Result<Option<Id>, FieldError> {
        self.read(name, Id::from_json)
    }

    /// A Unix time in seconds (milliseconds are normalised).
    pub fn time(&self, name: &str) -> Result<Option<i64>, FieldError> {
        self.read(name, ids::time_from_json)
    }

    pub fn text(&self, name: &str) -> Result<Option<String>, FieldError> {
        self.read(name, ids::text_from_json)
    }

    pub fn flag(&self, name: &str) -> Result<Option<bool>, FieldError> {
        self.read(name, ids::flag_from_json)
    }

    pub fn order_status(&self, name: &str) -> Result<Option<OrderStatus>, FieldError> {
        self.read(name, OrderStatus::from_json)
    }

    /// Text that some senders give as a string of JSON and others as the JSON itself
    /// (a message's `content`): a string is kept as it is, an object or array as its
    /// raw JSON text, so that both decode the same way later.
    pub fn json_text(&self, name: &str) -> Result<Option<String>, FieldError> {
        self.read(name, |raw| match JsonKind::of(raw) {
            JsonKind::Object | JsonKind::Array => Ok(Some(raw.get().to_owned())),
            _ => ids::text_from_json(raw),
        })
    }

    /// A nested object, `None` when missing or `null`.
    pub fn nested(&self, name: &str) -> Result<Option<Fields<'a>>, FieldError> {
        match self.members.get(name) {
            None => Ok(None),
            Some(raw) => Fields::object(&self.path_of(name), raw),
        }
    }

    /// A list of ids. Missing or `null` is an empty list; `null` and `""` entries are
    /// left out, because an absent id must never become a value.
    pub fn ids(&self, name: &str) -> Result<Vec<Id>, FieldError> {
        self.list(name, Id::from_json)
    }

    /// A list of texts, with the same rules as [`Fields::ids`].
    pub fn texts(&self, name: &str) -> Result<Vec<String>, FieldError> {
        self.list(name, ids::text_from_json)
    }

    /// A list of objects (`null` entries left out).
    pub fn objects(&self, name: &str) -> Result<Vec<Fields<'a>>, FieldError> {
        let mut out = Vec::new();
        for (index, raw) in self.items(name)?.into_iter().enumerate() {
            let path = format!("{}[{}]", self.path_of(name), index);
            out.extend(Fields::object(&path, raw)?);
        }
        Ok(out)
    }

    fn list<T>(
        &self,
        name: &str,
        reader: fn(&RawValue) -> Result<Option<T>, Expected>,
    ) -> Result<Vec<T>, FieldError> {
        let mut out = Vec::new();
        for (index, raw) in self.items(name)?.into_iter().enumerate() {
            let path = format!("{}[{}]", self.path_of(name), index);
            out.extend(reader(raw).map_err(|expected| FieldError { path, expected })?);
        }
        Ok(out)
    }

    fn items(&self, name: &str) -> Result<Vec<&'a RawValue>, FieldError> {
        let error = || FieldError {
            path: self.path_of(name),
            expected: "an array",
        };
        match self.members.get(name) {
            None => Ok(Vec::new()),
            Some(raw) => match JsonKind::of(raw) {
                JsonKind::Null => Ok(Vec::new()),
                JsonKind::Array => serde_json::from_str(raw.get()).map_err(|_| error()),
                _ => Err(error()),
            },
        }
    }
}
