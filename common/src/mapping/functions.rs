//! The functions a configured value may call beyond MiniJinja's built-ins: exact decimal money
//! arithmetic (never f64) with explicit half-up rounding, source-time formatting, `md5`, sums over
//! lines, and the value maps of a scheme (`maps.NAME(value)`).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use md5::{Digest, Md5};
use minijinja::value::{Object, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::scheme::config::UnmappedPolicy;

/// Registers every Ferry function on `env`.
pub(crate) fn register(env: &mut Environment<'_>) {
    env.add_function("dec", dec);
    env.add_function("add", add);
    env.add_function("sub", sub);
    env.add_function("mul", mul);
    env.add_function("div", div);
    env.add_function("sum", sum);
    env.add_function("date", date);
    env.add_function("md5", md5_hex);
    env.add_filter("dec", dec);
    env.add_filter("date", date);
    env.add_filter("md5", md5_hex);
}

/// The names `register` adds, so `ferry check` can tell a function from a misspelt variable.
pub(crate) const FUNCTION_NAMES: &[&str] =
    &["dec", "add", "sub", "mul", "div", "sum", "date", "md5"];

fn fail(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// Reads a value as an exact decimal: strings such as `"12.5000"`, integers, and JSON floats by their
/// shortest text (so `12.5` reads as exactly 12.5).
pub(crate) fn to_decimal(value: &Value, func: &str) -> Result<Decimal, Error> {
    match value.kind() {
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default().trim();
            if text.is_empty() {
                return Err(fail(format!(
                    "{func}(): the value is empty, expected a number"
                )));
            }
            Decimal::from_str(text)
                .or_else(|_| Decimal::from_scientific(text))
                .map_err(|_| fail(format!("{func}(): '{text}' is not a decimal number")))
        }
        ValueKind::Number => match value.as_i64() {
            Some(i) => Ok(Decimal::from(i)),
            None => {
                let text = value.to_string();
                Decimal::from_str(&text)
                    .or_else(|_| Decimal::from_scientific(&text))
                    .map_err(|_| fail(format!("{func}(): {text} is not a finite decimal number")))
            }
        },
        ValueKind::Undefined | ValueKind::None => Err(fail(format!(
            "{func}(): the value is missing, expected a number"
        ))),
        kind => Err(fail(format!("{func}(): expected a number, got {kind}"))),
    }
}

/// Rounds half-up (away from zero at the midpoint) and pads to exactly `scale` decimals.
pub fn round_half_up(value: Decimal, scale: u32) -> Decimal {
    let mut rounded = value.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(scale);
    rounded
}

/// Exact results keep their natural scale (`71.40 - 65.50` is `5.90`).
fn decimal_text(value: Decimal) -> Value {
    Value::from(value.to_string())
}

/// Canonical text without trailing zeros (`2.0000` → `2`), for `dec(x)` and unrounded quotients.
fn normalized_text(value: Decimal) -> Value {
    Value::from(value.normalize().to_string())
}

fn scale_arg(scale: Option<i64>, func: &str) -> Result<Option<u32>, Error> {
    match scale {
        None => Ok(None),
        Some(s) if (0..=12).contains(&s) => Ok(Some(s as u32)),
        Some(s) => Err(fail(format!("{func}(): scale {s} is out of range 0..=12"))),
    }
}

/// `dec(x)` → x as canonical decimal text (`"2.0000"` → `"2"`); `dec(x, 2)` → rounded half-up to 2 places, e.g. `"12.50"`.
fn dec(value: Value, scale: Option<i64>) -> Result<Value, Error> {
    let number = to_decimal(&value, "dec")?;
    Ok(match scale_arg(scale, "dec")? {
        Some(scale) => Value::from(round_half_up(number, scale).to_string()),
        None => normalized_text(number),
    })
}

fn checked(result: Option<Decimal>, func: &str) -> Result<Decimal, Error> {
    result.ok_or_else(|| fail(format!("{func}(): the result overflows a decimal")))
}

/// `add(a, b, ...)`: the exact sum.
fn add(values: Rest<Value>) -> Result<Value, Error> {
    let mut total = Decimal::ZERO;
    for value in values.iter() {
        total = checked(total.checked_add(to_decimal(value, "add")?), "add")?;
    }
    Ok(decimal_text(total))
}

/// `sub(a, b)`: the exact difference.
fn sub(a: Value, b: Value) -> Result<Value, Error> {
    let result = to_decimal(&a, "sub")?.checked_sub(to_decimal(&b, "sub")?);
    Ok(decimal_text(checked(result, "sub")?))
}

/// `mul(a, b, ...)`: the exact product.
fn mul(values: Rest<Value>) -> Result<Value, Error> {
    let mut product = Decimal::ONE;
    for value in values.iter() {
        product = checked(product.checked_mul(to_decimal(value, "mul")?), "mul")?;
    }
    Ok(decimal_text(product))
}

/// `div(a, b)`: the quotient to 28 significant digits; `div(a, b, 2)` rounds it half-up.
fn div(a: Value, b: Value, scale: Option<i64>) -> Result<Value, Error> {
    let divisor = to_decimal(&b, "div")?;
    if divisor.is_zero() {
        return Err(fail(format!("div(): cannot divide {a} by zero")));
    }
    let quotient = checked(to_decimal(&a, "div")?.checked_div(divisor), "div")?;
    Ok(match scale_arg(scale, "div")? {
        Some(scale) => Value::from(round_half_up(quotient, scale).to_string()),
        None => normalized_text(quotient),
    })
}

/// `sum(items, 'attr')`: the exact sum of one attribute over a list (or of the list's values).
fn sum(items: Value, attr: Option<String>) -> Result<Value, Error> {
    if items.is_undefined() || items.is_none() {
        return Err(fail("sum(): the list is missing".into()));
    }
    let mut total = Decimal::ZERO;
    for item in items
        .try_iter()
        .map_err(|_| fail(format!("sum(): expected a list, got {}", items.kind())))?
    {
        let value = match &attr {
            Some(attr) => item.get_attr(attr)?,
            None => item,
        };
        total = checked(total.checked_add(to_decimal(&value, "sum")?), "sum")?;
    }
    Ok(decimal_text(total))
}

/// `date(t)` → `YYYY-MM-DD` of a source time; `date(t, '%Y-%m-%d %H:%M:%S')` → any strftime form.
fn date(value: Value, format: Option<String>) -> Result<Value, Error> {
    let text = match value.as_str() {
        Some(text) => text,
        None if value.is_undefined() || value.is_none() => {
            return Err(fail("date(): the time is missing".into()));
        }
        None => {
            return Err(fail(format!(
                "date(): expected a time string, got {}",
                value.kind()
            )));
        }
    };
    let parsed =
        crate::time::parse_source_datetime(text).map_err(|e| fail(format!("date(): {e}")))?;
    let format = format.as_deref().unwrap_or("%Y-%m-%d");
    jiff::fmt::strtime::format(format, parsed)
        .map(Value::from)
        .map_err(|e| fail(format!("date(): bad format '{format}': {e}")))
}

/// A value as text: a string as it is, anything else as MiniJinja prints it.
pub(crate) fn text_of(value: &Value) -> String {
    value
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string())
}

/// `md5(text)` → 32 lowercase hex digits.
fn md5_hex(value: Value) -> String {
    md5_of(&text_of(&value))
}

/// The md5 of `text` as 32 lowercase hex digits (the mapping's `md5`, and Ferry's idempotency keys).
pub fn md5_of(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// One value map, ready for look-ups.
#[derive(Debug)]
pub(crate) struct CompiledValueMap {
    pub(crate) entries: HashMap<String, Value>,
    pub(crate) unmapped: UnmappedPolicy,
}

/// The `maps` global: `maps.shop_customer(doc.shop_no)` looks a code up in the scheme's value map.
#[derive(Debug, Default)]
pub(crate) struct ValueMaps {
    pub(crate) maps: HashMap<String, CompiledValueMap>,
}

impl ValueMaps {
    /// Looks `value` up in map `name`, applying the map's policy for unmapped values.
    pub(crate) fn lookup(&self, name: &str, value: &Value) -> Result<Value, Error> {
        let map = self.maps.get(name).ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownMethod,
                format!("no value map named '{name}'"),
            )
        })?;
        if value.is_undefined() || value.is_none() {
            // A missing source value stays missing: a required target field then reports it.
            return Ok(Value::UNDEFINED);
        }
        let key = match value.as_str() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(value.to_string()),
        };
        match map.entries.get(key.as_ref()) {
            Some(mapped) => Ok(mapped.clone()),
            None => match map.unmapped {
                UnmappedPolicy::Passthrough => Ok(Value::from(key.as_ref())),
                UnmappedPolicy::Fail => Err(fail(format!(
                    "'{key}' has no entry in value map '{name}' (its policy for unmapped values is fail)"
                ))),
            },
        }
    }
}

impl Object for ValueMaps {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let [value] = args else {
            return Err(fail(format!(
                "maps.{name}() takes exactly one value, got {}",
                args.len()
            )));
        };
        self.lookup(name, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expr: &str) -> Result<Value, Error> {
        let mut env = Environment::new();
        register(&mut env);
        env.compile_expression(expr)?.eval(Value::UNDEFINED)
    }

    #[test]
    fn decimal_arithmetic_is_exact_and_rounds_half_up() {
        assert_eq!(eval("dec('2.675', 2)").unwrap().as_str(), Some("2.68"));
        assert_eq!(eval("dec('-2.675', 2)").unwrap().as_str(), Some("-2.68"));
        assert_eq!(eval("dec('0.125', 2)").unwrap().as_str(), Some("0.13"));
        assert_eq!(eval("dec('12.5', 2)").unwrap().as_str(), Some("12.50"));
        assert_eq!(eval("dec(3)").unwrap().as_str(), Some("3"));
        // 0.1 + 0.2 is exactly 0.3 in decimal, unlike f64.
        assert_eq!(eval("add('0.1', '0.2')").unwrap().as_str(), Some("0.3"));
        assert_eq!(eval("add(0.1, 0.2)").unwrap().as_str(), Some("0.3"));
        assert_eq!(eval("sub('10.00', '0.01')").unwrap().as_str(), Some("9.99"));
        assert_eq!(eval("mul('19.90', 3)").unwrap().as_str(), Some("59.70"));
        assert_eq!(
            eval("sub('71.40', '65.50')").unwrap().as_str(),
            Some("5.90")
        );
        assert_eq!(eval("dec('2.0000')").unwrap().as_str(), Some("2"));
        assert_eq!(eval("div(100, 3, 2)").unwrap().as_str(), Some("33.33"));
        assert_eq!(eval("div(2, 3, 2)").unwrap().as_str(), Some("0.67"));
        assert_eq!(
            eval("sum([{'a': '1.10'}, {'a': 2}, {'a': '0.005'}], 'a')")
                .unwrap()
                .as_str(),
            Some("3.105")
        );
    }

    #[test]
    fn decimal_errors_name_the_function_and_the_value() {
        let err = eval("dec('12,50', 2)").unwrap_err();
        assert_eq!(err.detail(), Some("dec(): '12,50' is not a decimal number"));
        let err = eval("div(1, '0.00')").unwrap_err();
        assert_eq!(err.detail(), Some("div(): cannot divide 1 by zero"));
        let err = eval("dec(nothing)").unwrap_err();
        assert_eq!(
            err.detail(),
            Some("dec(): the value is missing, expected a number")
        );
        let err = eval("dec('')").unwrap_err();
        assert_eq!(
            err.detail(),
            Some("dec(): the value is empty, expected a number")
        );
    }

    #[test]
    fn dates_and_md5() {
        assert_eq!(
            eval("date('2024-03-01 23:59:59')").unwrap().as_str(),
            Some("2024-03-01")
        );
        assert_eq!(
            eval("'2024-03-01 23:59:59' | date('%Y%m%d')")
                .unwrap()
                .as_str(),
            Some("20240301")
        );
        let err = eval("date('2024-02-30 10:00:00')").unwrap_err();
        assert_eq!(
            err.detail(),
            Some("date(): '2024-02-30 10:00:00' is not a time of the form YYYY-MM-DD HH:MM:SS")
        );
        assert_eq!(
            eval("md5('abc')").unwrap().as_str(),
            Some("900150983cd24fb0d6963f7d28e17f72")
        );
    }
}
