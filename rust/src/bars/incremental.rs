//! Live aggregation: 1-minute bars pushed as they close, higher-timeframe bars handed out as
//! soon as their bucket is over, O(timeframes) work per pushed bar.
//!
//! With an input timeframe (1m by default) a bucket is complete when the bar that ends at its
//! boundary is pushed, not one bar later: a bot gets the 09:30-09:35 bar at 09:35. Each push is
//! validated before any state changes, so a rejected push or batch leaves the aggregator as it
//! was.

use super::batch::{Series, Spec};
use super::bucket::{Accumulator, Bar};
use super::validate::{BarError, Columns, Validator, BLOCK};

/// The incremental aggregator's state: one accumulator per timeframe and the input rules.
#[derive(Debug, Clone)]
pub struct Live {
    accs: Vec<Accumulator>,
    /// Length of one input bar in ns, or 0 to complete a bucket only when the next one starts.
    input_period: i64,
    validator: Validator,
}

impl Live {
    /// An aggregator for `specs`; `input_period` 0 disables early completion.
    pub fn new(specs: &[Spec], input_period: i64) -> Self {
        Self {
            accs: specs
                .iter()
                .map(|s| Accumulator::new(s.period, s.offset))
                .collect(),
            input_period: input_period.max(0),
            validator: Validator::new(input_period),
        }
    }

    /// Bars accepted so far.
    pub fn count(&self) -> i64 {
        self.validator.count
    }

    /// The bar being built for timeframe `k`.
    pub fn partial(&self, k: usize) -> Option<Bar> {
        self.accs.get(k).and_then(Accumulator::partial)
    }

    /// Push one bar; returns the bars it completed as `(timeframe index, bar)`, in order.
    pub fn push(&mut self, row: Bar) -> Result<Vec<(usize, Bar)>, BarError> {
        self.validator
            .check_row(row.t, row.o, row.h, row.l, row.c, row.v)?;
        let mut done = Vec::new();
        self.apply(row, |k, bar| done.push((k, bar)));
        Ok(done)
    }

    /// Push a batch (all or nothing); returns the completed bars of each timeframe.
    ///
    /// The whole batch is validated first, then folded block by block as batch aggregation
    /// does: the bars are the same as pushing row by row, since a bar completed early (by the
    /// row that ends its bucket) would be handed out by the next row anyway; only the batch's
    /// last row can complete a bar early.
    pub fn push_many(&mut self, cols: &Columns<'_>) -> Result<Vec<Series>, BarError> {
        let n = cols.len_checked()?;
        let mut validator = self.validator;
        let mut start = 0;
        while start < n {
            let end = (start + BLOCK).min(n);
            validator.check_block(cols, start, end)?;
            start = end;
        }
        self.validator = validator;
        let span = match (cols.t.first(), cols.t.last()) {
            (Some(first), Some(last)) => last - first,
            _ => 0,
        };
        // At most one bar per row and per period of the span (plus both ends), and the bar
        // that was open before this batch.
        let mut outs: Vec<Series> = self
            .accs
            .iter()
            .map(|a| Series::with_capacity(n.min((span / a.period) as usize + 2) + 1))
            .collect();
        let mut start = 0;
        while start < n {
            let end = (start + BLOCK).min(n);
            let block = cols.slice(start, end);
            for (acc, out) in self.accs.iter_mut().zip(outs.iter_mut()) {
                let max_new = (end - start).min(out.room());
                out.append(max_new, |slots| acc.fold(&block, slots));
            }
            start = end;
        }
        if let (Some(&last), true) = (cols.t.last(), self.input_period > 0) {
            for (acc, out) in self.accs.iter_mut().zip(outs.iter_mut()) {
                // Validated: |t| <= 2^62 and the input period is at most 10,000 days.
                if last + self.input_period >= acc.next {
                    if let Some(done) = acc.take() {
                        out.push_bar(&done);
                    }
                }
            }
        }
        Ok(outs)
    }

    fn apply(&mut self, row: Bar, mut emit: impl FnMut(usize, Bar)) {
        for (k, acc) in self.accs.iter_mut().enumerate() {
            if let Some(done) = acc.absorb(row) {
                emit(k, done);
            }
            // Validated: |t| <= 2^62 and the input period is at most 10,000 days.
            if self.input_period > 0 && row.t + self.input_period >= acc.next {
                if let Some(done) = acc.take() {
                    emit(k, done);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::batch::aggregate;

    const MIN: i64 = 60_000_000_000;

    #[test]
    fn completes_the_bucket_with_the_bar_that_ends_it() {
        let five = Spec {
            period: 5 * MIN,
            offset: 0,
        };
        let mut live = Live::new(&[five], MIN);
        for m in 0..4 {
            let bar = Bar {
                t: m * MIN,
                o: 1.0,
                h: 2.0,
                l: 0.5,
                c: 1.5,
                v: 1,
            };
            assert!(live.push(bar).map(|d| d.is_empty()).unwrap_or(false));
        }
        let last = Bar {
            t: 4 * MIN,
            o: 1.0,
            h: 3.0,
            l: 0.25,
            c: 2.0,
            v: 1,
        };
        let done = live.push(last).unwrap_or_default();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].1.v, 5);
        assert_eq!(live.partial(0), None);
    }

    #[test]
    fn push_many_equals_batch_and_rejects_atomically() {
        let t: Vec<i64> = [0, 1, 2, 7, 8, 20, 61].iter().map(|m| m * MIN).collect();
        let o: Vec<f64> = (0..t.len()).map(|i| 100.0 + i as f64 * 0.25).collect();
        let h: Vec<f64> = o.iter().map(|x| x + 1.0).collect();
        let l: Vec<f64> = o.iter().map(|x| x - 1.0).collect();
        let v: Vec<i64> = (0..t.len() as i64).collect();
        let cols = Columns {
            t: &t,
            o: &o,
            h: &h,
            l: &l,
            c: &o,
            v: &v,
        };
        let specs = [
            Spec {
                period: 5 * MIN,
                offset: 0,
            },
            Spec {
                period: 60 * MIN,
                offset: 2 * MIN,
            },
        ];
        let batch = aggregate(&cols, &specs).unwrap_or_default();
        let mut live = Live::new(&specs, MIN);
        let got = live.push_many(&cols).unwrap_or_default();
        for k in 0..specs.len() {
            let mut all = got[k].clone();
            if let Some(p) = live.partial(k) {
                all.push_bar(&p);
            }
            assert_eq!(all, batch[k]);
        }
        let before = live.count();
        let bad_t = [62 * MIN, 62 * MIN];
        let bad = Columns {
            t: &bad_t,
            o: &o[..2],
            h: &h[..2],
            l: &l[..2],
            c: &o[..2],
            v: &v[..2],
        };
        let err = live.push_many(&bad).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("t: duplicate timestamp at index 8"));
        assert_eq!(live.count(), before);
    }
}
