//! One timeframe's running bar: the bucket rule and the OHLCV fold, shared by batch and live.
//!
//! A row lands in the bucket `t - (t - offset) mod period` (clock-aligned from the epoch plus
//! an offset in `[0, period)`); open = first, high = max, low = min, close = last, volume = sum.
//! Prices are only ever copied or compared, never computed, so they stay on the tick grid.

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

/// Fold a run of rows into (high, low, volume). Four independent lanes break the latency
/// chain of max/min (exact: max and min do not depend on order, and inputs are never NaN).
#[inline(always)]
fn reduce(h: &[f64], l: &[f64], v: &[i64], hi: f64, lo: f64, vol: i64) -> (f64, f64, i64) {
    let (mut his, mut los, mut vols) = ([hi; 4], [lo; 4], [0i64; 4]);
    let (hc, lc, vc) = (h.chunks_exact(4), l.chunks_exact(4), v.chunks_exact(4));
    let (hr, lr, vr) = (hc.remainder(), lc.remainder(), vc.remainder());
    for ((x, y), z) in hc.zip(lc).zip(vc) {
        for k in 0..4 {
            his[k] = max(his[k], x[k]);
            los[k] = min(los[k], y[k]);
            vols[k] += z[k];
        }
    }
    let mut hi = max(max(his[0], his[1]), max(his[2], his[3]));
    let mut lo = min(min(los[0], los[1]), min(los[2], los[3]));
    let mut vol = vol + (vols[0] + vols[1]) + (vols[2] + vols[3]);
    for ((&x, &y), &z) in hr.iter().zip(lr).zip(vr) {
        hi = max(hi, x);
        lo = min(lo, y);
        vol += z;
    }
    (hi, lo, vol)
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

    /// Fold a block of rows (validated, ascending) run by run: each bucket's rows are found by
    /// a scan of `t` and reduced in tight loops, with the bar in registers; `emit` receives each
    /// bar that the block completes, as scalars (passing a struct through memory here costs
    /// store-forwarding stalls).
    #[inline(always)]
    pub fn fold(&mut self, rows: &Columns<'_>, mut emit: impl FnMut(i64, f64, f64, f64, f64, i64)) {
        let Columns { t, o, h, l, c, v } = *rows;
        let n = t
            .len()
            .min(o.len())
            .min(h.len())
            .min(l.len())
            .min(c.len())
            .min(v.len());
        let Bar {
            t: mut bt,
            o: mut bo,
            h: mut bh,
            l: mut bl,
            c: mut bc,
            v: mut bv,
        } = self.cur;
        let (mut next, mut open, period) = (self.next, self.open, self.period);
        let mut i = 0;
        while i < n {
            if t[i] >= next {
                if open {
                    emit(bt, bo, bh, bl, bc, bv);
                }
                // Usually the row opens the very next bucket: skip the integer division.
                bt = if open && t[i] - next < period {
                    next
                } else {
                    self.label(t[i])
                };
                next = bt + period;
                (bo, bh, bl, bc, bv) = (o[i], h[i], l[i], c[i], v[i]);
                open = true;
                i += 1;
            }
            // The rest of this bucket's rows in the block, reduced without bounds checks.
            let run = t[i..n].iter().position(|&x| x >= next).unwrap_or(n - i);
            let j = i + run;
            if run > 0 {
                (bh, bl, bv) = reduce(&h[i..j], &l[i..j], &v[i..j], bh, bl, bv);
                bc = c[j - 1];
            }
            i = j;
        }
        self.cur = Bar {
            t: bt,
            o: bo,
            h: bh,
            l: bl,
            c: bc,
            v: bv,
        };
        self.next = next;
        self.open = open;
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
