//! Source projections: the set of source fields a compiled scheme reads. Documents are parsed into
//! just those fields; everything else in the JSON is skipped by the parser without being allocated.

use std::fmt;

use minijinja::value::Value;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Which fields of an object (or of each object in an array) to keep.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Projection {
    /// Keep everything below this point.
    all: bool,
    /// Kept fields, each with what to keep inside it. A handful per object: a linear scan beats hashing.
    fields: Vec<(String, Projection)>,
}

impl Projection {
    /// A projection that keeps everything.
    pub fn everything() -> Self {
        Projection {
            all: true,
            fields: Vec::new(),
        }
    }

    /// Keeps everything from here down.
    pub(crate) fn keep_all(&mut self) {
        self.all = true;
        self.fields.clear();
    }

    /// Keeps the field at `path` (`["goods_list", "spec_no"]`); an empty path keeps everything.
    pub(crate) fn keep(&mut self, path: &[&str]) {
        if self.all {
            return;
        }
        match path.split_first() {
            None => self.keep_all(),
            Some((first, rest)) => {
                let child = self.child(first);
                if rest.is_empty() {
                    child.keep_all();
                } else {
                    child.keep(rest);
                }
            }
        }
    }

    /// Keeps the field at `path` without keeping its contents (a list whose items are projected).
    pub(crate) fn keep_shallow(&mut self, path: &[&str]) -> &mut Projection {
        let mut node = self;
        for segment in path {
            node = node.child(segment);
        }
        node
    }

    fn child(&mut self, name: &str) -> &mut Projection {
        let index = match self.fields.iter().position(|(key, _)| key == name) {
            Some(index) => index,
            None => {
                self.fields.push((name.to_owned(), Projection::default()));
                self.fields.len() - 1
            }
        };
        &mut self.fields[index].1
    }

    fn get(&self, name: &str) -> Option<(&String, &Projection)> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(key, projection)| (key, projection))
    }

    /// Parses JSON text into a value holding only the projected fields.
    pub fn parse(&self, text: &str) -> Result<Value, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let value = self.deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }
}

impl<'de> DeserializeSeed<'de> for &Projection {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.all {
            serde::Deserialize::deserialize(deserializer)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

/// Looks a key up in the projection without allocating it.
struct KeySeed<'p>(&'p Projection);

impl<'de, 'p> DeserializeSeed<'de> for KeySeed<'p> {
    type Value = Option<(&'p String, &'p Projection)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 'p> Visitor<'de> for KeySeed<'p> {
    type Value = Option<(&'p String, &'p Projection)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.get(key))
    }
}

macro_rules! scalar {
    ($name:ident, $ty:ty) => {
        fn $name<E: de::Error>(self, v: $ty) -> Result<Value, E> {
            Ok(Value::from(v))
        }
    };
}

impl<'de> Visitor<'de> for &Projection {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    scalar!(visit_bool, bool);
    scalar!(visit_i64, i64);
    scalar!(visit_u64, u64);
    scalar!(visit_f64, f64);
    scalar!(visit_str, &str);
    scalar!(visit_string, String);

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::from(()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::from(()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::from(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut pairs = Vec::with_capacity(self.fields.len());
        while let Some(found) = map.next_key_seed(KeySeed(self))? {
            match found {
                Some((key, projection)) => {
                    let value = map.next_value_seed(projection)?;
                    pairs.push((Value::from(key.as_str()), value));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::from_pairs(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_projected_fields_and_everything_under_keep_all() {
        let mut projection = Projection::default();
        projection.keep(&["trade_no"]);
        projection.keep(&["meta"]);
        projection.keep_shallow(&["goods_list"]).keep(&["spec_no"]);
        let text = r#"{"trade_no":"JY1","shop":"x","meta":{"a":1,"b":[2]},
                      "goods_list":[{"spec_no":"S1","num":"2"},{"spec_no":"S\u00e9","num":3}]}"#;
        let value = projection.parse(text).unwrap();
        assert_eq!(
            value.to_string(),
            "{'goods_list': [{'spec_no': 'S1'}, {'spec_no': 'Sé'}], 'meta': {'a': 1, 'b': [2]}, 'trade_no': 'JY1'}"
        );
        assert_eq!(
            Projection::everything()
                .parse(text)
                .unwrap()
                .get_attr("shop")
                .unwrap()
                .as_str(),
            Some("x")
        );
    }

    #[test]
    fn malformed_json_is_an_error_with_its_position() {
        let err = Projection::everything()
            .parse(r#"{"trade_no": "JY1",}"#)
            .unwrap_err();
        assert_eq!(err.to_string(), "trailing comma at line 1 column 20");
        let err = Projection::everything()
            .parse(r#"{"a": 1} {"b": 2}"#)
            .unwrap_err();
        assert!(err.to_string().starts_with("trailing characters"), "{err}");
    }
}
