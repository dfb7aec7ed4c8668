//! Order prices: which price each order type takes, the contract's tick grid, and the exact
//! grid value a price is sent as. Mirrors `harness/orders/validation.py` word for word (its
//! docstring holds the one table of rules and messages).

use super::error::{InputValue, OrderError};

/// The three price fields of a placement, in the order they are checked.
pub const PRICE_FIELDS: [&str; 3] = ["limit_price", "stop_price", "trail_price"];

/// At or beyond this many ticks every double is an integer count of ticks: nothing to snap.
const EXACT_STEPS: f64 = 9_007_199_254_740_992.0; // 2**53

/// The `OrderType` name of a type value (as Python's `OrderType(n).name`).
pub fn type_name(order_type: i64) -> &'static str {
    match order_type {
        1 => "LIMIT",
        2 => "MARKET",
        3 => "STOP_LIMIT",
        4 => "STOP",
        5 => "TRAILING_STOP",
        6 => "JOIN_BID",
        7 => "JOIN_ASK",
        _ => "UNKNOWN",
    }
}

/// Which of `PRICE_FIELDS` an order type takes (limit, stop, trail); `None` for a type that is
/// not checked (STOP_LIMIT, which `Order/place` does not list: the broker judges it).
fn takes(order_type: i64) -> Option<[bool; 3]> {
    match order_type {
        1 => Some([true, false, false]),
        4 => Some([false, true, false]),
        5 => Some([false, false, true]),
        2 | 6 | 7 => Some([false, false, false]),
        _ => None,
    }
}

/// What is wrong with the prices given for an order type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceRule {
    /// The type needs this price and it is missing: `required by order type {TYPE}`.
    Required(&'static str),
    /// The type does not take this price: `does not apply to order type {TYPE}`.
    NotTaken(&'static str),
}

impl PriceRule {
    /// The field named by the error.
    pub fn field(self) -> &'static str {
        match self {
            PriceRule::Required(f) | PriceRule::NotTaken(f) => f,
        }
    }

    /// The reason text of the error for `order_type`.
    pub fn reason(self, order_type: i64) -> String {
        match self {
            PriceRule::Required(_) => format!("required by order type {}", type_name(order_type)),
            PriceRule::NotTaken(_) => {
                format!("does not apply to order type {}", type_name(order_type))
            }
        }
    }
}

/// The first price (limit, stop, trail) missing for `order_type` or given but not taken by it.
pub fn price_rule(order_type: i64, given: [bool; 3]) -> Option<PriceRule> {
    let wanted = takes(order_type)?;
    PRICE_FIELDS
        .iter()
        .zip(wanted.iter().zip(given.iter()))
        .find_map(|(&field, (&wants, &has))| match (wants, has) {
            (true, false) => Some(PriceRule::Required(field)),
            (false, true) => Some(PriceRule::NotTaken(field)),
            _ => None,
        })
}

/// Whether `price` sits on the grid of `tick` (float noise of 1e-6 tick tolerated).
pub fn on_tick_grid(price: f64, tick: f64) -> bool {
    if !(tick.is_finite() && tick > 0.0) {
        return true;
    }
    let steps = price / tick;
    (steps - steps.round()).abs() <= 1e-6
}

/// The tick as an exact decimal `mantissa x 10^exponent`, from its shortest printed form
/// (0.1 -> (1, -1), 0.25 -> (25, -2), 5e-05 -> (5, -5)).
fn decimal_parts(tick: f64) -> Option<(i64, i32)> {
    let text = format!("{tick:e}");
    let (mantissa, exponent) = text.split_once('e')?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: i64 = format!("{whole}{fraction}").parse().ok()?;
    let shift = i32::try_from(fraction.len()).ok()?;
    Some((digits, exponent.parse::<i32>().ok()? - shift))
}

/// `price` (already on the grid by `on_tick_grid`) as the grid value itself: n = round(price /
/// tick), and the result is the double nearest to n x tick computed exactly in decimal from the
/// tick's shortest printed form, so JSON prints the grid value (2621.8999999999996 on a 0.1
/// grid -> 2621.9). A tick that is not a positive finite number, or a price 2**53 ticks or
/// more from zero, leaves the price as it is.
pub fn snap_to_tick(price: f64, tick: f64) -> f64 {
    if !(tick.is_finite() && tick > 0.0) {
        return price;
    }
    let steps = price / tick;
    if steps.is_nan() || steps.abs() >= EXACT_STEPS {
        return price;
    }
    let Some((mantissa, exponent)) = decimal_parts(tick) else {
        return price;
    };
    // |steps| < 2**53 and the mantissa has at most 17 digits: the product fits an i128.
    let scaled = i128::from(steps.round() as i64) * i128::from(mantissa);
    format!("{scaled}e{exponent}").parse().unwrap_or(price)
}

/// Each given price checked against the grid of `tick` (in the order limit, stop, trail) and
/// snapped onto it; the first one off the grid is the error.
pub fn grid_prices(prices: [Option<f64>; 3], tick: f64) -> Result<[Option<f64>; 3], OrderError> {
    let mut snapped = prices;
    for (slot, field) in snapped.iter_mut().zip(PRICE_FIELDS) {
        if let Some(value) = *slot {
            if !on_tick_grid(value, tick) {
                return Err(OrderError::InvalidInput {
                    field,
                    value: InputValue::Float(value),
                    reason: format!("not on the tick grid of {tick:?}"),
                });
            }
            *slot = Some(snap_to_tick(value, tick));
        }
    }
    Ok(snapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_grid_tolerates_float_noise_only() {
        assert!(on_tick_grid(21000.25, 0.25));
        assert!(on_tick_grid(0.1 + 0.2, 0.1));
        assert!(!on_tick_grid(21000.3, 0.25));
        assert!(on_tick_grid(5.0, 0.0));
    }

    #[test]
    fn a_price_a_hair_off_the_grid_becomes_the_grid_value() {
        assert_eq!(snap_to_tick(2_621.899_999_999_999_6, 0.1), 2621.9);
        assert_eq!(snap_to_tick(2_621.900_000_000_000_5, 0.1), 2621.9);
        assert_eq!(format!("{}", snap_to_tick(0.1 + 0.2, 0.1)), "0.3");
        assert_eq!(snap_to_tick(1.090_550_000_000_000_1, 0.00005), 1.09055);
        assert_eq!(snap_to_tick(-3.749_999_999_999_999_6, 0.25), -3.75);
        assert_eq!(snap_to_tick(21000.25, 0.25), 21000.25);
        assert_eq!(snap_to_tick(7.500_000_000_000_001, 2.5), 7.5);
        // No tick, or beyond 2**53 ticks: as given.
        assert_eq!(snap_to_tick(1.234, 0.0), 1.234);
        assert_eq!(snap_to_tick(1e300, 0.25), 1e300);
    }

    #[test]
    fn ticks_read_as_exact_decimals() {
        assert_eq!(decimal_parts(0.1), Some((1, -1)));
        assert_eq!(decimal_parts(0.25), Some((25, -2)));
        assert_eq!(decimal_parts(0.00005), Some((5, -5)));
        assert_eq!(decimal_parts(2.0), Some((2, 0)));
        assert_eq!(decimal_parts(12.5), Some((125, -1)));
    }

    #[test]
    fn grid_prices_snap_and_name_the_first_off_the_grid() {
        let ok = grid_prices([Some(2_621.899_999_999_999_6), None, Some(1.0)], 0.1).unwrap();
        assert_eq!(ok, [Some(2621.9), None, Some(1.0)]);
        let err = grid_prices([None, Some(2621.85), Some(1.03)], 0.1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid stop_price=Float(2621.85): not on the tick grid of 0.1"
        );
    }

    #[test]
    fn each_type_takes_its_own_price() {
        let none = [false, false, false];
        assert_eq!(
            price_rule(1, none),
            Some(PriceRule::Required("limit_price"))
        );
        // The first offending field in the order limit, stop, trail.
        assert_eq!(
            price_rule(5, [false, true, false]),
            Some(PriceRule::NotTaken("stop_price"))
        );
        assert_eq!(
            price_rule(5, [false, false, false]),
            Some(PriceRule::Required("trail_price"))
        );
        assert_eq!(
            price_rule(2, [false, false, true]),
            Some(PriceRule::NotTaken("trail_price"))
        );
        assert_eq!(
            price_rule(1, [true, true, false]),
            Some(PriceRule::NotTaken("stop_price"))
        );
        assert_eq!(price_rule(4, [false, true, false]), None);
        assert_eq!(
            price_rule(3, [true, true, true]),
            None,
            "STOP_LIMIT: the broker's"
        );
        assert_eq!(
            PriceRule::Required("limit_price").reason(1),
            "required by order type LIMIT"
        );
        assert_eq!(
            PriceRule::NotTaken("limit_price").reason(6),
            "does not apply to order type JOIN_BID"
        );
    }
}
