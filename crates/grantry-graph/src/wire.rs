//! The serialization core of typed responses: timestamps, `@odata.type`, the `$select` field
//! mask, and an explicit JSON `null` for expanded navigation properties that lead nowhere.
//!
//! Entities are `#[derive(Serialize)]` views that borrow from the domain model, one per
//! dialect where the shapes differ; they are written straight to the response bytes.
//! `$select` is applied while serializing by [`Selected`], which hands the entity a
//! serializer that drops the properties the mask does not keep, so no intermediate tree is
//! built and no response is parsed again.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeStruct, Serializer};
use std::cell::Cell;
use std::fmt;

/// Graph timestamp: UTC with a `Z` suffix and only as many fractional digits as needed.
#[derive(Debug, Clone, Copy)]
pub struct Ts(pub DateTime<Utc>);

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Written through `Display` straight into the output: no string per timestamp.
        s.collect_str(self)
    }
}

impl fmt::Display for Ts {
    /// As `to_rfc3339_opts(SecondsFormat::AutoSi, true)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::{Datelike, Timelike};
        let t = self.0;
        let nanos = t.nanosecond();
        if !(0..=9999).contains(&t.year()) || nanos >= 1_000_000_000 {
            return f.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        }
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        if nanos == 0 {
        } else if nanos.is_multiple_of(1_000_000) {
            write!(f, ".{:03}", nanos / 1_000_000)?;
        } else if nanos.is_multiple_of(1_000) {
            write!(f, ".{:06}", nanos / 1_000)?;
        } else {
            write!(f, ".{nanos:09}")?;
        }
        f.write_str("Z")
    }
}

/// Optional timestamp: `null` when absent.
pub fn ts_opt(t: Option<DateTime<Utc>>) -> Option<Ts> {
    t.map(Ts)
}

/// JSON `null`, for properties Graph always sends empty and navigation properties that are
/// expanded but not modelled.
#[derive(Debug, Clone, Copy)]
pub struct Null;

impl Serialize for Null {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

/// An empty JSON array, for collections Graph always sends empty.
#[derive(Debug, Clone, Copy)]
pub struct EmptyList;

impl Serialize for EmptyList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(std::iter::empty::<()>())
    }
}

/// An expanded navigation property: absent unless `$expand` names it (`None`, with
/// `skip_serializing_if = "Option::is_none"`), then the related view or `null`.
pub type Nav<T> = Option<Option<T>>;

/// `$select`: the top-level properties to keep. `id` and annotations (`@odata.*`) are always
/// kept; names compare ignoring case, as Graph does.
#[derive(Debug, Clone, Default)]
pub struct Select {
    names: Vec<String>,
}

impl Select {
    /// From parsed `$select` paths; `None` when the mask keeps everything (`*`).
    pub fn from_paths(paths: &[Vec<String>]) -> Option<Select> {
        if paths.iter().any(|p| p.first().is_some_and(|s| s == "*")) {
            return None;
        }
        Some(Select { names: paths.iter().filter_map(|p| p.first().cloned()).collect() })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn keeps(&self, key: &str) -> bool {
        key.starts_with('@') || key == "id" || self.names.iter().any(|n| n.eq_ignore_ascii_case(key))
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.names.iter().position(|n| n.eq_ignore_ascii_case(key))
    }
}

/// Which names of a [`Select`] an entity turned out to have, recorded while serializing it
/// (a bit per name; names past the 64th are assumed present).
#[derive(Debug, Default)]
pub struct Seen(Cell<u64>);

impl Seen {
    fn mark(&self, i: usize) {
        if i < 64 {
            self.0.set(self.0.get() | (1 << i));
        }
    }

    /// The first name of `select` the entity did not have.
    pub fn missing<'a>(&self, select: &'a Select) -> Option<&'a str> {
        let seen = self.0.get();
        select.names.iter().enumerate().find(|(i, _)| *i < 64 && seen & (1 << i) == 0).map(|(_, n)| n.as_str())
    }
}

/// `value` serialized through `select` (everything when `None`); when `seen` is given, the
/// names the entity had are recorded there, so the caller can refuse a `$select` naming a
/// property the entity does not have.
pub struct Selected<'a, T: ?Sized> {
    pub value: &'a T,
    pub select: Option<&'a Select>,
    pub seen: Option<&'a Seen>,
}

impl<T: Serialize + ?Sized> Serialize for Selected<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.select {
            None => self.value.serialize(s),
            Some(select) => self.value.serialize(Masked { inner: s, select, seen: self.seen }),
        }
    }
}

/// A serializer that passes everything to `inner` except the properties of the outermost
/// object, which it filters through the mask. Nested values go to `inner`'s own serializers,
/// so the mask applies at the top level only.
struct Masked<'a, S> {
    inner: S,
    select: &'a Select,
    seen: Option<&'a Seen>,
}

struct MaskedCompound<'a, C> {
    inner: C,
    select: &'a Select,
    seen: Option<&'a Seen>,
    /// Whether the value of the key passed to `serialize_key` is kept.
    keep_value: bool,
}

impl<C> MaskedCompound<'_, C> {
    fn keeps(&self, key: &str) -> bool {
        if let (Some(seen), Some(i)) = (self.seen, self.select.position(key)) {
            seen.mark(i);
        }
        self.select.keeps(key)
    }
}

impl<C: SerializeStruct> SerializeStruct for MaskedCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), C::Error> {
        if self.keeps(key) { self.inner.serialize_field(key, value) } else { self.inner.skip_field(key) }
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeMap> SerializeMap for MaskedCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        let name = key.serialize(KeyName).map_err(ser::Error::custom)?;
        self.keep_value = self.keeps(&name);
        if self.keep_value { self.inner.serialize_key(key) } else { Ok(()) }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        if self.keep_value { self.inner.serialize_value(value) } else { Ok(()) }
    }
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), C::Error> {
        let name = key.serialize(KeyName).map_err(ser::Error::custom)?;
        if self.keeps(&name) { self.inner.serialize_entry(key, value) } else { Ok(()) }
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<'a, S: Serializer> Serializer for Masked<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = S::SerializeSeq;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = S::SerializeTupleVariant;
    type SerializeMap = MaskedCompound<'a, S::SerializeMap>;
    type SerializeStruct = MaskedCompound<'a, S::SerializeStruct>;
    type SerializeStructVariant = S::SerializeStructVariant;

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, S::Error> {
        Ok(MaskedCompound {
            inner: self.inner.serialize_struct(name, len)?,
            select: self.select,
            seen: self.seen,
            keep_value: false,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        // The length is a hint only: fewer entries may follow once the mask drops some.
        let _ = len;
        Ok(MaskedCompound {
            inner: self.inner.serialize_map(None)?,
            select: self.select,
            seen: self.seen,
            keep_value: false,
        })
    }

    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.inner.serialize_bool(v)
    }
    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i8(v)
    }
    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i16(v)
    }
    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i32(v)
    }
    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i64(v)
    }
    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u8(v)
    }
    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u16(v)
    }
    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u32(v)
    }
    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u64(v)
    }
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_f32(v)
    }
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_f64(v)
    }
    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.inner.serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        self.inner.serialize_bytes(v)
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        // `Option<Entity>`: the mask applies to the entity inside.
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(self, name: &'static str, index: u32, variant: &'static str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<S::Ok, S::Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_newtype_variant(name, index, variant, value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<S::SerializeSeq, S::Error> {
        self.inner.serialize_seq(len)
    }
    fn serialize_tuple(self, len: usize) -> Result<S::SerializeTuple, S::Error> {
        self.inner.serialize_tuple(len)
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<S::SerializeTupleStruct, S::Error> {
        self.inner.serialize_tuple_struct(name, len)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeTupleVariant, S::Error> {
        self.inner.serialize_tuple_variant(name, index, variant, len)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeStructVariant, S::Error> {
        self.inner.serialize_struct_variant(name, index, variant, len)
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// The text of a map key (object keys are strings in JSON).
struct KeyName;

#[derive(Debug)]
struct NotAString;

impl fmt::Display for NotAString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key is not a string")
    }
}

impl std::error::Error for NotAString {}

impl ser::Error for NotAString {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotAString
    }
}

macro_rules! not_a_string {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name(self, _: $ty) -> Result<String, NotAString> { Err(NotAString) })*
    };
}

impl Serializer for KeyName {
    type Ok = String;
    type Error = NotAString;
    type SerializeSeq = Impossible<String, NotAString>;
    type SerializeTuple = Impossible<String, NotAString>;
    type SerializeTupleStruct = Impossible<String, NotAString>;
    type SerializeTupleVariant = Impossible<String, NotAString>;
    type SerializeMap = Impossible<String, NotAString>;
    type SerializeStruct = Impossible<String, NotAString>;
    type SerializeStructVariant = Impossible<String, NotAString>;

    fn serialize_str(self, v: &str) -> Result<String, NotAString> {
        Ok(v.to_string())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<String, NotAString> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<String, NotAString> {
        v.serialize(self)
    }
    not_a_string!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_bytes: &[u8], serialize_unit_struct: &'static str);
    fn serialize_none(self) -> Result<String, NotAString> {
        Err(NotAString)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, NotAString> {
        Err(NotAString)
    }
    fn serialize_unit(self) -> Result<String, NotAString> {
        Err(NotAString)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, NotAString> {
        Err(NotAString)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAString> {
        Err(NotAString)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAString> {
        Err(NotAString)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, NotAString> {
        Err(NotAString)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotAString> {
        Err(NotAString)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAString> {
        Err(NotAString)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotAString> {
        Err(NotAString)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotAString> {
        Err(NotAString)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::json;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Thing<'a> {
        #[serde(rename = "@odata.type")]
        odata_type: &'static str,
        id: &'a str,
        display_name: &'a str,
        description: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Nav<Inner>,
    }

    #[derive(Serialize)]
    struct Inner {
        a: u8,
        b: u8,
    }

    fn select(names: &[&str]) -> Select {
        Select::from_paths(&names.iter().map(|n| vec![n.to_string()]).collect::<Vec<_>>()).unwrap()
    }

    fn thing() -> Thing<'static> {
        Thing {
            odata_type: "#microsoft.graph.thing",
            id: "1",
            display_name: "D",
            description: None,
            target: Some(Some(Inner { a: 1, b: 2 })),
        }
    }

    #[test]
    fn mask_keeps_named_properties_id_and_annotations_at_the_top_level_only() {
        let s = select(&["DISPLAYNAME", "target"]);
        let seen = Seen::default();
        let out = serde_json::to_value(Selected { value: &thing(), select: Some(&s), seen: Some(&seen) }).unwrap();
        assert_eq!(
            out,
            json!({"@odata.type": "#microsoft.graph.thing", "id": "1", "displayName": "D", "target": {"a": 1, "b": 2}})
        );
        assert_eq!(seen.missing(&s), None);
    }

    #[test]
    fn mask_records_names_the_entity_lacks_and_applies_to_maps_too() {
        let s = select(&["displayName", "shoeSize"]);
        let seen = Seen::default();
        let v = json!({"id": "1", "displayName": "D", "other": true});
        let out = serde_json::to_string(&Selected { value: &v, select: Some(&s), seen: Some(&seen) }).unwrap();
        assert_eq!(out, r#"{"displayName":"D","id":"1"}"#);
        assert_eq!(seen.missing(&s), Some("shoeSize"));
        assert!(Select::from_paths(&[vec!["*".into()]]).is_none());
    }

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        for text in [
            "2030-01-02T03:04:05Z",
            "2030-01-02T03:04:05.1Z",
            "2030-01-02T03:04:05.123456Z",
            "2030-01-02T03:04:05.123456789Z",
            "1970-01-01T00:00:00.000001Z",
            "0099-12-31T23:59:59Z",
        ] {
            let t: DateTime<Utc> = text.parse().unwrap();
            assert_eq!(Ts(t).to_string(), t.to_rfc3339_opts(SecondsFormat::AutoSi, true), "{text}");
        }
    }

    #[test]
    fn timestamps_use_as_few_fraction_digits_as_needed() {
        let t: DateTime<Utc> = "2030-01-02T03:04:05.120Z".parse().unwrap();
        assert_eq!(serde_json::to_string(&Ts(t)).unwrap(), r#""2030-01-02T03:04:05.120Z""#);
        let t: DateTime<Utc> = "2030-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(serde_json::to_string(&Ts(t)).unwrap(), r#""2030-01-02T03:04:05Z""#);
    }
}
