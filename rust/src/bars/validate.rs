//! Input rules for 1-minute bars, checked identically to `harness/bars/python.py`.
//!
//! Every rule has one reason string, shared word for word with the Python reference, so both
//! implementations raise `BarDataError` with the same message. Rows are checked in index order
//! and, within a row, in the order of `check_row`; the first failure wins.

use thiserror::Error;

/// Timestamps must lie within +-2^62 ns of the epoch (1823-2116), so that no bucket label,
/// offset or boundary can overflow int64 for any supported period.
pub const T_LIMIT: i64 = 1 << 62;

/// Longest supported period (10,000 days), mirrored by `parse_timeframe` in Python.
pub const MAX_PERIOD: i64 = 10_000 * 86_400 * 1_000_000_000;

pub const R_T_RANGE: &str = "timestamp outside the supported range (years 1823 to 2116)";
pub const R_T_DUPLICATE: &str = "duplicate timestamp";
pub const R_T_BACKWARDS: &str = "timestamp goes backwards (bars must be sorted ascending)";
pub const R_T_OVERLAP: &str =
    "bar starts before the previous one ends (closer than the input timeframe)";
pub const R_NAN: &str = "price is NaN";
pub const R_INFINITE: &str = "price is infinite";
pub const R_HIGH_BELOW_LOW: &str = "high below low";
pub const R_NEGATIVE_VOLUME: &str = "negative volume";
pub const R_VOLUME_OVERFLOW: &str = "total volume overflows int64";

/// The offending value carried by a `BarDataError`, for the caller's inspection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Offending {
    Int(i64),
    Float(f64),
    None,
}

/// A rejected input: the column, the first offending row (-1 for whole-column problems), why.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{field}: {reason} at index {index}")]
pub struct BarError {
    pub field: &'static str,
    pub index: i64,
    pub reason: String,
    pub value: Offending,
}

impl BarError {
    fn row(field: &'static str, index: i64, reason: &str, value: Offending) -> Self {
        Self {
            field,
            index,
            reason: reason.to_string(),
            value,
        }
    }
}

/// Borrowed column arrays of a bar series (zero-copy views of the numpy inputs).
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    pub t: &'a [i64],
    pub o: &'a [f64],
    pub h: &'a [f64],
    pub l: &'a [f64],
    pub c: &'a [f64],
    pub v: &'a [i64],
}

impl<'a> Columns<'a> {
    /// Rows `start..end` (callers pass bounds within the checked length).
    pub fn slice(&self, start: usize, end: usize) -> Columns<'a> {
        Columns {
            t: &self.t[start..end],
            o: &self.o[start..end],
            h: &self.h[start..end],
            l: &self.l[start..end],
            c: &self.c[start..end],
            v: &self.v[start..end],
        }
    }

    /// Number of rows, or the first column whose length differs from `t`.
    pub fn len_checked(&self) -> Result<usize, BarError> {
        let n = self.t.len();
        let others = [
            ("o", self.o.len()),
            ("h", self.h.len()),
            ("l", self.l.len()),
            ("c", self.c.len()),
            ("v", self.v.len()),
        ];
        for (field, len) in others {
            if len != n {
                return Err(BarError {
                    field,
                    index: -1,
                    reason: format!("length {len} differs from t length {n}"),
                    value: Offending::Int(len as i64),
                });
            }
        }
        Ok(n)
    }
}

/// 0.0 for a finite price, NaN for NaN or +-inf (IEEE: inf - inf is NaN), so a sum of these
/// is 0.0 exactly when every term is finite. Cheaper in the vector scan than testing bits.
#[inline(always)]
#[allow(clippy::eq_op)]
fn zero_if_finite(x: f64) -> f64 {
    x - x
}

/// Running state of the input rules across rows (and across pushes, for the incremental API).
#[derive(Debug, Clone, Copy)]
pub struct Validator {
    /// Timestamp of the last accepted row.
    pub prev: Option<i64>,
    /// Sum of all accepted volumes (bounded so that no bucket sum can overflow).
    pub total: i64,
    /// Rows accepted so far: the index base for error messages.
    pub count: i64,
    /// Minimum distance between consecutive timestamps: 1 (strictly increasing) or the input
    /// timeframe of an incremental aggregator that completes buckets as soon as they close.
    pub min_gap: i64,
}

/// Rows scanned per fast-check block: small enough to stay in L1/L2 for the aggregation pass.
pub const BLOCK: usize = 2048;

impl Validator {
    /// A validator for a fresh series (`min_gap` 1 = strictly increasing).
    pub fn new(min_gap: i64) -> Self {
        Self {
            prev: None,
            total: 0,
            count: 0,
            min_gap: min_gap.max(1),
        }
    }

    /// Check one row exactly, in the documented rule order, and accept it.
    #[allow(clippy::too_many_arguments)]
    pub fn check_row(
        &mut self,
        t: i64,
        o: f64,
        h: f64,
        l: f64,
        c: f64,
        v: i64,
    ) -> Result<(), BarError> {
        let index = self.count;
        if !(-T_LIMIT..=T_LIMIT).contains(&t) {
            return Err(BarError::row("t", index, R_T_RANGE, Offending::Int(t)));
        }
        if let Some(prev) = self.prev {
            if t == prev {
                return Err(BarError::row("t", index, R_T_DUPLICATE, Offending::Int(t)));
            }
            if t < prev {
                return Err(BarError::row("t", index, R_T_BACKWARDS, Offending::Int(t)));
            }
            // Both in range, so the difference cannot overflow.
            if t - prev < self.min_gap {
                return Err(BarError::row("t", index, R_T_OVERLAP, Offending::Int(t)));
            }
        }
        for (field, x) in [("o", o), ("h", h), ("l", l), ("c", c)] {
            if x.is_nan() {
                return Err(BarError::row(field, index, R_NAN, Offending::Float(x)));
            }
            if x.is_infinite() {
                return Err(BarError::row(field, index, R_INFINITE, Offending::Float(x)));
            }
        }
        if h < l {
            return Err(BarError::row(
                "h",
                index,
                R_HIGH_BELOW_LOW,
                Offending::Float(h),
            ));
        }
        if v < 0 {
            return Err(BarError::row(
                "v",
                index,
                R_NEGATIVE_VOLUME,
                Offending::Int(v),
            ));
        }
        let Some(total) = self.total.checked_add(v) else {
            return Err(BarError::row(
                "v",
                index,
                R_VOLUME_OVERFLOW,
                Offending::Int(v),
            ));
        };
        self.total = total;
        self.prev = Some(t);
        self.count += 1;
        Ok(())
    }

    /// Check rows `start..end` of `cols` (at most `BLOCK` of them): a branch-free scan that
    /// vectorizes, falling back to the exact row-by-row check (for the first failing row and
    /// its message) only if it trips.
    #[inline(always)]
    pub fn check_block(
        &mut self,
        cols: &Columns<'_>,
        start: usize,
        end: usize,
    ) -> Result<(), BarError> {
        let mut from = start;
        if self.prev.is_none() && from < end {
            // The first row has no predecessor: check it exactly, then scan the rest.
            self.check_slow(cols, from, from + 1)?;
            from += 1;
        }
        if from >= end {
            return Ok(());
        }
        let Columns { t, o, h, l, c, v } = cols.slice(from, end);
        let mut bad = end - from > BLOCK;
        // `prev` was accepted (in range): the difference is exact when t[0] is in range too,
        // and a t out of range sets `bad` below anyway.
        if let Some(prev) = self.prev {
            bad |= t[0].wrapping_sub(prev) < self.min_gap;
        }
        // Each test below is folded into the bits of an accumulator (OR, or AND for `rising`),
        // which vectorizes without a compare per row; a bit set wrongly only sends the block to
        // the exact row check.
        let (mut nonfinite, mut spreads, mut vbits, mut vsum) = (0u64, 0u64, 0u64, 0i64);
        for i in 0..t.len() {
            // 0.0 when o, c and h - l are finite (see `zero_if_finite`): then o, h, l, c are.
            // A finite h - l that overflows to infinity only sends the block to the exact check.
            let spread = h[i] - l[i];
            let z = zero_if_finite(o[i]) + zero_if_finite(c[i]) + zero_if_finite(spread);
            nonfinite |= z.to_bits();
            // The sign bit of h - l is set when h < l (and for -0.0 - +0.0: the exact check).
            spreads |= spread.to_bits();
            // A negative volume sets the top bit: one OR catches it and any huge volume.
            vbits |= v[i] as u64;
            vsum = vsum.wrapping_add(v[i]);
        }
        bad |= (nonfinite != 0) | (spreads >> 63 != 0);
        // Every t in [-2^62, 2^62) (a sign bit of t + 2^62 flags one that is not; 2^62 itself
        // goes to the exact check), so the differences below are exact (without this, 2^63 - 1
        // then -2^63 + 5 would wrap to a negative difference); each row is above the one
        // before when every earlier - later difference is negative (sign bit set).
        let mut outside = 0u64;
        for &x in t {
            outside |= x.wrapping_add(T_LIMIT) as u64;
        }
        let mut rising = u64::MAX;
        for (&a, &b) in t.iter().zip(&t[1..]) {
            rising &= a.wrapping_sub(b) as u64;
        }
        bad |= (outside >> 63 != 0) | (rising >> 63 == 0);
        if self.min_gap > 1 && !bad {
            for w in t.windows(2) {
                bad |= w[1] - w[0] < self.min_gap;
            }
        }
        // With every volume in [0, 2^49) a block of BLOCK rows sums exactly in an i64.
        bad |= vbits >= (1 << 49);
        let total = if bad {
            None
        } else {
            self.total.checked_add(vsum)
        };
        match total {
            Some(total) => {
                self.total = total;
                self.prev = Some(t[t.len() - 1]);
                self.count += t.len() as i64;
                Ok(())
            }
            None => self.check_slow(cols, from, end),
        }
    }

    fn check_slow(&mut self, cols: &Columns<'_>, start: usize, end: usize) -> Result<(), BarError> {
        for i in start..end {
            self.check_row(
                cols.t[i], cols.o[i], cols.h[i], cols.l[i], cols.c[i], cols.v[i],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;

    struct Owned {
        t: Vec<i64>,
        p: Vec<f64>,
        h: Vec<f64>,
        l: Vec<f64>,
        v: Vec<i64>,
    }

    impl Owned {
        fn new(n: usize) -> Self {
            let p: Vec<f64> = (0..n).map(|i| 100.0 + (i % 7) as f64 * 0.25).collect();
            Self {
                t: (0..n as i64).map(|i| i * MIN).collect(),
                h: p.iter().map(|x| x + 1.0).collect(),
                l: p.iter().map(|x| x - 1.0).collect(),
                p,
                v: vec![3; n],
            }
        }

        fn cols(&self) -> Columns<'_> {
            Columns {
                t: &self.t,
                o: &self.p,
                h: &self.h,
                l: &self.l,
                c: &self.p,
                v: &self.v,
            }
        }

        /// The first error of the blockwise check, and of the row-by-row check.
        fn both(&self) -> (Option<String>, Option<String>) {
            let cols = self.cols();
            let n = cols.len_checked().unwrap_or(0);
            let mut fast = Validator::new(1);
            let mut start = 0;
            let mut fast_err = None;
            while start < n && fast_err.is_none() {
                let end = (start + BLOCK).min(n);
                fast_err = fast
                    .check_block(&cols, start, end)
                    .err()
                    .map(|e| e.to_string());
                start = end;
            }
            let mut slow = Validator::new(1);
            let slow_err = slow.check_slow(&cols, 0, n).err().map(|e| e.to_string());
            (fast_err, slow_err)
        }
    }

    #[test]
    fn blockwise_scan_reports_exactly_what_the_row_check_reports() {
        let n = 5000;
        for at in [0, 1, 2047, 2048, 2049, 4999] {
            let mut cases: Vec<(Owned, &str)> = Vec::new();
            let mut dup = Owned::new(n);
            if at > 0 {
                dup.t[at] = dup.t[at - 1];
                cases.push((dup, "t: duplicate timestamp"));
            }
            let mut nan = Owned::new(n);
            nan.h[at] = f64::NAN;
            cases.push((nan, "h: price is NaN"));
            let mut inf = Owned::new(n);
            inf.l[at] = f64::NEG_INFINITY;
            cases.push((inf, "l: price is infinite"));
            let mut low = Owned::new(n);
            low.l[at] = low.h[at] + 0.25;
            cases.push((low, "h: high below low"));
            let mut neg = Owned::new(n);
            neg.v[at] = -1;
            cases.push((neg, "v: negative volume"));
            let mut range = Owned::new(n);
            range.t[at] = T_LIMIT + 1;
            let first = if at == n - 1 {
                "t: timestamp outside"
            } else {
                "t: timestamp"
            };
            cases.push((range, first));
            for (case, prefix) in cases {
                let (fast, slow) = case.both();
                assert_eq!(fast, slow);
                let message = fast.unwrap_or_default();
                assert!(message.starts_with(prefix), "{message}");
            }
        }
        // Rows near 2^62, then 2^63 - 1 and -2^63 + 5, then rows near -2^62: every difference
        // of neighbours, wrapped around int64, looks rising, and the block's first and last
        // rows are in range.
        for at in [1, 2000, 3000] {
            let mut wrapped = Owned::new(n);
            for (i, t) in wrapped.t.iter_mut().enumerate() {
                let i = i as i64;
                *t = if i < at {
                    T_LIMIT - MIN * 9_000
                } else {
                    -T_LIMIT
                } + i * MIN;
            }
            wrapped.t[at as usize] = i64::MAX;
            wrapped.t[at as usize + 1] = i64::MIN + 5;
            let (fast, slow) = wrapped.both();
            assert_eq!(fast, slow);
            assert_eq!(
                fast.unwrap_or_default(),
                format!("t: {R_T_RANGE} at index {at}")
            );
        }
        let mut overflow = Owned::new(n);
        overflow.v = vec![1 << 61; n];
        let (fast, slow) = overflow.both();
        assert_eq!(fast, slow);
        assert_eq!(
            fast.as_deref(),
            Some("v: total volume overflows int64 at index 3")
        );
        assert_eq!(Owned::new(n).both(), (None, None));
    }

    #[test]
    fn length_mismatch_names_the_column() {
        let data = Owned::new(3);
        let cols = Columns {
            v: &data.v[..2],
            ..data.cols()
        };
        let err = cols
            .len_checked()
            .err()
            .map(|e| (e.field, e.index, e.reason));
        assert_eq!(
            err,
            Some(("v", -1, "length 2 differs from t length 3".to_string()))
        );
    }
}
