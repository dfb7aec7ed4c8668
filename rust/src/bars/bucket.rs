//! One timeframe's running bar: the bucket rule and the OHLCV fold, shared by batch and live.
//!
//! A row lands in the bucket `t - (t - offset) mod period` (clock-aligned from the epoch plus
//! an offset in `[0, period)`); open = first, high = max, low = min, close = last, volume = sum.
//! Prices are only ever copied or compared, never computed, so they stay on the tick grid.

use super::batch::Appender;
use super::validate::Columns;

/// One OHLCV bar; `t` is the bucket start in ns since the epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub t: i64,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    pub v: i64,
}

// Written as selects so they compile to branch-free maxsd/minsd (inputs are never NaN).
#[inline(always)]
fn max(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn min(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else {
        b
    }
}

/// Fold a run of rows into (high, low, volume), four rows at a time: a tree of max/min per
/// four rows shortens the latency chain of a long run (daily bars), and the 4 rows after the
/// first of a 5m bucket are one step (exact: max and min do not depend on order, and inputs
/// are never NaN; the integer sum is exact in any order).
#[inline(always)]
fn reduce(h: &[f64], l: &[f64], v: &[i64], hi: f64, lo: f64, vol: i64) -> (f64, f64, i64) {
    let (mut hi, mut lo, mut vol) = (hi, lo, vol);
    let (hc, lc, vc) = (h.chunks_exact(4), l.chunks_exact(4), v.chunks_exact(4));
    let (hr, lr, vr) = (hc.remainder(), lc.remainder(), vc.remainder());
    for ((x, y), z) in hc.zip(lc).zip(vc) {
        hi = max(hi, max(max(x[0], x[1]), max(x[2], x[3])));
        lo = min(lo, min(min(y[0], y[1]), min(y[2], y[3])));
        vol += (z[0] + z[1]) + (z[2] + z[3]);
    }
    for ((&x, &y), &z) in hr.iter().zip(lr).zip(vr) {
        hi = max(hi, x);
        lo = min(lo, y);
        vol += z;
    }
    (hi, lo, vol)
}

/// End (exclusive) of the run of rows from `i` that lie before `next`, the end of row `i`'s
/// bucket (`t` ascending, `t[i] < next`). Regular input (one bar a minute) has as many rows in
/// each bucket as in the one before, so `guess` (that count) is tried first and checked with
/// two comparisons: `t` ascending, the run ends at `g` exactly when `t[g - 1] < next <= t[g]`.
/// Otherwise (a gap, a session break, the block's end) a binary search finds it.
#[inline(always)]
fn run_end(t: &[i64], i: usize, guess: usize, next: i64) -> usize {
    let n = t.len();
    let g = i + guess.max(1);
    // `t[g - 1]` and `t[g]` in one bounds check.
    if let Some(&[before, at]) = t.get(g - 1..=g) {
        if before < next && at >= next {
            return g;
        }
    } else if t[n - 1] < next {
        return n;
    }
    let rest = &t[i + 1..];
    i + 1 + rest.partition_point(|&x| x < next)
}

/// The bar being built for one timeframe.
#[derive(Debug, Clone, Copy)]
pub struct Accumulator {
    pub period: i64,
    pub offset: i64,
    /// First timestamp of the next bucket; `i64::MIN` before the first row.
    pub next: i64,
    /// The current bar; meaningful only while `open`.
    pub cur: Bar,
    pub open: bool,
    /// Rows in the last whole bucket of a batch fold: the guess for the next one.
    pub run: usize,
}

impl Accumulator {
    /// An empty accumulator; `offset` must already be reduced to `[0, period)`.
    pub fn new(period: i64, offset: i64) -> Self {
        Self {
            period,
            offset,
            next: i64::MIN,
            cur: Bar {
                t: 0,
                o: 0.0,
                h: 0.0,
                l: 0.0,
                c: 0.0,
                v: 0,
            },
            open: false,
            run: 1,
        }
    }

    /// Bucket start of timestamp `t` (validated: |t| <= 2^62 and period <= 10,000 days, so
    /// nothing here can overflow).
    #[inline(always)]
    pub fn label(&self, t: i64) -> i64 {
        t - (t - self.offset).rem_euclid(self.period)
    }

    /// Fold one row in; returns the previous bar when this row starts a new bucket.
    #[inline(always)]
    pub fn absorb(&mut self, row: Bar) -> Option<Bar> {
        if row.t >= self.next {
            return self.start(row);
        }
        self.cur.h = max(self.cur.h, row.h);
        self.cur.l = min(self.cur.l, row.l);
        self.cur.c = row.c;
        self.cur.v += row.v;
        None
    }

    /// Fold a block of rows (validated, ascending) bucket by bucket: each bucket's rows are
    /// found as one run (see `run_end`) and reduced by short loops over slices; `out` receives
    /// each bar as soon as the row after it is seen. The bar still open at the end of the block
    /// stays here, for the next block or for `take`.
    #[inline(always)]
    pub fn fold(&mut self, rows: &Columns<'_>, out: &mut Appender<'_>) {
        let Columns { t, o, h, l, c, v } = *rows;
        // One length for all six (callers pass equal lengths): no bounds checks below.
        let n = t.len();
        let (o, h, l, c, v) = (&o[..n], &h[..n], &l[..n], &c[..n], &v[..n]);
        let (mut next, period) = (self.next, self.period);
        let mut guess = self.run.max(1);
        let mut i = 0;
        if self.open && n > 0 {
            let bar = &mut self.cur;
            if t[0] < next {
                // The block's first rows still belong to the open bar.
                i = run_end(t, 0, guess, next);
                (bar.h, bar.l, bar.v) = reduce(&h[..i], &l[..i], &v[..i], bar.h, bar.l, bar.v);
                bar.c = c[i - 1];
            }
            if i < n {
                out.push(bar.t, bar.o, bar.h, bar.l, bar.c, bar.v);
                self.open = false;
            }
        }
        while i < n {
            let ti = t[i];
            // Usually the row opens the very next bucket: skip the integer division. `next` is
            // a bucket boundary at or before `ti`, or i64::MIN before the first row (then the
            // wrapped difference is above 2^62, more than any period).
            let bt = if (ti.wrapping_sub(next) as u64) < period as u64 {
                next
            } else {
                self.label(ti)
            };
            next = bt + period;
            let j = run_end(t, i, guess, next);
            // Row i opens the bar, rows i + 1..j fold into it.
            let (hs, ls, vs) = (&h[i..j], &l[i..j], &v[i..j]);
            let (bh, bl, bv) = reduce(&hs[1..], &ls[1..], &vs[1..], hs[0], ls[0], vs[0]);
            let (bo, bc) = (o[i], c[j - 1]);
            if j < n {
                // Row j opens the next bucket: this bar is complete, and the next bucket
                // probably has as many rows.
                out.push(bt, bo, bh, bl, bc, bv);
                guess = j - i;
            } else {
                self.cur = Bar {
                    t: bt,
                    o: bo,
                    h: bh,
                    l: bl,
                    c: bc,
                    v: bv,
                };
                self.open = true;
            }
            i = j;
        }
        (self.next, self.run) = (next, guess);
    }

    #[inline(never)]
    fn start(&mut self, row: Bar) -> Option<Bar> {
        let done = if self.open { Some(self.cur) } else { None };
        // Usually the row opens the very next bucket: skip the (slow) integer division.
        let label = if self.next != i64::MIN && row.t - self.next < self.period {
            self.next
        } else {
            self.label(row.t)
        };
        self.next = label + self.period;
        self.cur = Bar { t: label, ..row };
        self.open = true;
        done
    }

    /// Close the current bar (end of input, or the bucket's time is over) and hand it out.
    pub fn take(&mut self) -> Option<Bar> {
        let done = if self.open { Some(self.cur) } else { None };
        self.open = false;
        done
    }

    /// The bar being built, if any.
    pub fn partial(&self) -> Option<Bar> {
        self.open.then_some(self.cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;

    fn row(t: i64, p: f64, v: i64) -> Bar {
        Bar {
            t,
            o: p,
            h: p + 1.0,
            l: p - 1.0,
            c: p + 0.5,
            v,
        }
    }

    #[test]
    fn run_end_takes_a_right_guess_and_searches_past_a_wrong_one() {
        // Minutes 0..=4 in the bucket ending at 5, then a gap to 9.
        let t: Vec<i64> = [0, 1, 2, 3, 4, 9, 10, 11].iter().map(|m| m * MIN).collect();
        let next = 5 * MIN;
        for guess in [1, 3, 5, 6, 8, 100] {
            assert_eq!(run_end(&t, 0, guess, next), 5, "guess {guess}");
            assert_eq!(run_end(&t, 2, guess, next), 5, "guess {guess} from 2");
        }
        // The bucket goes on past the block: the run ends with it.
        for guess in [1, 2, 3, 4] {
            assert_eq!(run_end(&t, 5, guess, 15 * MIN), 8, "guess {guess}");
        }
        assert_eq!(run_end(&t[..1], 0, 5, next), 1);
        assert_eq!(run_end(&t, 4, 1, next), 5);
    }

    #[test]
    fn labels_floor_from_the_epoch_plus_offset() {
        let acc = Accumulator::new(5 * MIN, 0);
        assert_eq!(acc.label(7 * MIN), 5 * MIN);
        assert_eq!(acc.label(-1), -5 * MIN);
        let shifted = Accumulator::new(5 * MIN, 2 * MIN);
        assert_eq!(shifted.label(7 * MIN), 7 * MIN);
        assert_eq!(shifted.label(6 * MIN), 2 * MIN);
    }

    #[test]
    fn folds_first_max_min_last_sum() {
        let mut acc = Accumulator::new(5 * MIN, 0);
        assert_eq!(acc.absorb(row(MIN, 10.0, 1)), None);
        assert_eq!(acc.absorb(row(2 * MIN, 20.0, 2)), None);
        let done = acc.absorb(row(5 * MIN, 5.0, 4)).expect("bucket closed");
        assert_eq!(
            done,
            Bar {
                t: 0,
                o: 10.0,
                h: 21.0,
                l: 9.0,
                c: 20.5,
                v: 3
            }
        );
        assert_eq!(acc.take().map(|b| b.t), Some(5 * MIN));
        assert_eq!(acc.take(), None);
    }
}
