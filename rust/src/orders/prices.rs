//! Order prices: the contract's tick grid, and the exact grid value a price is sent as.
//! Mirrors `harness/orders/validation.py` word for word (its docstring holds the one table of
//! rules and messages); which price each order type takes is checked there, once, before a
//! call reaches Rust.

use super::error::{InputValue, OrderError};
use super::json::python_repr;

/// The three price fields of a placement, in the order they are checked.
pub const PRICE_FIELDS: [&str; 3] = ["limit_price", "stop_price", "trail_price"];

/// At or beyond this many ticks every double is an integer count of ticks: nothing to snap.
const EXACT_STEPS: f64 = 9_007_199_254_740_992.0; // 2**53

/// Whether `price` sits on the grid of `tick` (float noise of 1e-6 tick tolerated).
pub fn on_tick_grid(price: f64, tick: f64) -> bool {
    if !(tick.is_finite() && tick > 0.0) {
        return true;
    }
    let steps = price / tick;
    if steps.is_nan() || steps.abs() >= EXACT_STEPS {
        // Every such double is a whole count of ticks, or the count overflowed: as given.
        return true;
    }
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
                    // As Python prints the float (`5e-05`, not Rust's `5e-5`): one text on both sides.
                    reason: format!("not on the tick grid of {}", python_repr(tick)),
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
        // 2**53 ticks or more (the count overflowing included): sent as given.
        assert!(on_tick_grid(4.49e307, 0.25));
        assert!(on_tick_grid(f64::MAX, 0.1));
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
        let err = grid_prices([Some(1.00001), None, None], 0.00005).unwrap_err();
        assert!(err.to_string().ends_with("not on the tick grid of 5e-05"));
    }
}
