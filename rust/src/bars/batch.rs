//! Batch aggregation: one pass over contiguous columns into any number of timeframes.
//!
//! Timeframes that nest (15m inside 5m, 1h inside 15m, with compatible offsets) are built from
//! the finer timeframe's finished bars as they close, instead of from every 1-minute row, so
//! 5m+15m+1h costs little more than 5m alone. That is exact: each finer bucket lies wholly
//! inside one coarser bucket, and first/max/min/last/sum compose.

use std::mem::MaybeUninit;

use super::bucket::{Accumulator, Bar};
use super::validate::{BarError, Columns, Validator, BLOCK};

/// Output columns of one timeframe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub t: Vec<i64>,
    pub o: Vec<f64>,
    pub h: Vec<f64>,
    pub l: Vec<f64>,
    pub c: Vec<f64>,
    pub v: Vec<i64>,
}

impl Series {
    /// Empty columns with room for `n` bars (large ones offered to transparent huge pages).
    pub fn with_capacity(n: usize) -> Self {
        Self {
            t: huge_capable(n),
            o: huge_capable(n),
            h: huge_capable(n),
            l: huge_capable(n),
            c: huge_capable(n),
            v: huge_capable(n),
        }
    }

    /// Append one finished bar (the incremental path; batch folds write through `append`).
    #[allow(clippy::too_many_arguments)]
    pub fn push(&mut self, t: i64, o: f64, h: f64, l: f64, c: f64, v: i64) {
        self.t.push(t);
        self.o.push(o);
        self.h.push(h);
        self.l.push(l);
        self.c.push(c);
        self.v.push(v);
    }

    /// Bars that can still be appended without reallocating (the least spare capacity).
    pub fn room(&self) -> usize {
        let spare = |cap: usize, len: usize| cap - len;
        spare(self.t.capacity(), self.t.len())
            .min(spare(self.o.capacity(), self.o.len()))
            .min(spare(self.h.capacity(), self.h.len()))
            .min(spare(self.l.capacity(), self.l.len()))
            .min(spare(self.c.capacity(), self.c.len()))
            .min(spare(self.v.capacity(), self.v.len()))
    }

    /// Append at most `max_new` bars, written by `fill` through an `Appender` straight into the
    /// spare capacity: a bar costs six stores and one comparison, where six `Vec::push` would
    /// each load, check and store a length. Reserves room first if the capacity is short.
    #[inline(always)]
    pub fn append<R>(&mut self, max_new: usize, fill: impl FnOnce(&mut Appender<'_>) -> R) -> R {
        if self.room() < max_new {
            self.reserve(max_new);
        }
        let mut slots = Appender {
            t: &mut self.t.spare_capacity_mut()[..max_new],
            o: &mut self.o.spare_capacity_mut()[..max_new],
            h: &mut self.h.spare_capacity_mut()[..max_new],
            l: &mut self.l.spare_capacity_mut()[..max_new],
            c: &mut self.c.spare_capacity_mut()[..max_new],
            v: &mut self.v.spare_capacity_mut()[..max_new],
            len: 0,
        };
        let result = fill(&mut slots);
        let written = slots.len;
        // SAFETY: `Appender::push` writes slot `len` of all six columns before it counts it, so
        // the first `written` spare slots of each column are initialized; `written <= max_new`,
        // within the spare capacity checked above.
        unsafe {
            self.t.set_len(self.t.len() + written);
            self.o.set_len(self.o.len() + written);
            self.h.set_len(self.h.len() + written);
            self.l.set_len(self.l.len() + written);
            self.c.set_len(self.c.len() + written);
            self.v.set_len(self.v.len() + written);
        }
        result
    }

    fn reserve(&mut self, additional: usize) {
        self.t.reserve(additional);
        self.o.reserve(additional);
        self.h.reserve(additional);
        self.l.reserve(additional);
        self.c.reserve(additional);
        self.v.reserve(additional);
    }

    /// Append one finished bar.
    pub fn push_bar(&mut self, bar: &Bar) {
        self.push(bar.t, bar.o, bar.h, bar.l, bar.c, bar.v);
    }

    /// Bars `start..` as input columns (for the timeframes nested inside this one).
    pub fn columns_from(&self, start: usize) -> Columns<'_> {
        Columns {
            t: &self.t[start..],
            o: &self.o[start..],
            h: &self.h[start..],
            l: &self.l[start..],
            c: &self.c[start..],
            v: &self.v[start..],
        }
    }

    /// Number of bars.
    pub fn len(&self) -> usize {
        self.t.len()
    }

    /// True when there are no bars.
    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }
}

/// Spare slots at the end of a `Series`' six columns, filled in order by `push` (see
/// `Series::append`).
pub struct Appender<'a> {
    t: &'a mut [MaybeUninit<i64>],
    o: &'a mut [MaybeUninit<f64>],
    h: &'a mut [MaybeUninit<f64>],
    l: &'a mut [MaybeUninit<f64>],
    c: &'a mut [MaybeUninit<f64>],
    v: &'a mut [MaybeUninit<i64>],
    len: usize,
}

impl Appender<'_> {
    /// Write one finished bar into the next slot. More bars than the room asked for is a bug
    /// in the caller's bound: a panic (caught at the boundary), never a bar silently lost.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn push(&mut self, t: i64, o: f64, h: f64, l: f64, c: f64, v: i64) {
        let k = self.len;
        // All six slices have the same length, so this one check covers every store below.
        assert!(k < self.t.len(), "bar output bound exceeded");
        self.t[k].write(t);
        self.o[k].write(o);
        self.h[k].write(h);
        self.l[k].write(l);
        self.c[k].write(c);
        self.v[k].write(v);
        self.len = k + 1;
    }
}

/// Outputs of millions of bars are written once into fresh memory: with 4 KiB pages the page
/// faults cost more than the aggregation (measured: 10M rows to 5m, 129 ms vs 44 ms for 1d).
/// Large buffers are therefore offered to transparent huge pages, as numpy does for its arrays.
fn huge_capable<T>(n: usize) -> Vec<T> {
    let vec = Vec::with_capacity(n);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = vec.capacity() * std::mem::size_of::<T>();
        let start = vec.as_ptr() as usize;
        let aligned = start.next_multiple_of(HUGE);
        if bytes >= 2 * HUGE && aligned < start + bytes {
            let len = (start + bytes - aligned) / HUGE * HUGE;
            // SAFETY: advice only, on whole pages inside an allocation this Vec owns; it never
            // changes the contents or validity of the memory. Failure is ignored (no THP).
            unsafe {
                libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
            }
        }
    }
    vec
}

/// A requested timeframe: period in ns (> 0) and offset in ns, already reduced to `[0, period)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Spec {
    pub period: i64,
    pub offset: i64,
}

/// The finest requested timeframe whose buckets each lie wholly inside one bucket of `spec`.
fn parent_of(spec: Spec, nodes: &[Spec]) -> Option<usize> {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.period < spec.period
                && spec.period % p.period == 0
                && (spec.offset - p.offset).rem_euclid(p.period) == 0
        })
        .max_by_key(|(_, p)| p.period)
        .map(|(i, _)| i)
}

/// Aggregate columns (validated block by block as they are read) into each of `specs` in one
/// pass; outputs follow the order of `specs` (duplicates are computed once).
pub fn aggregate(cols: &Columns<'_>, specs: &[Spec]) -> Result<Vec<Series>, BarError> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { aggregate_avx2(cols, specs) };
    }
    aggregate_generic(cols, specs)
}

/// The same code compiled for AVX2, whose 64-bit compares make the validation scan fast.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn aggregate_avx2(cols: &Columns<'_>, specs: &[Spec]) -> Result<Vec<Series>, BarError> {
    aggregate_generic(cols, specs)
}

#[inline(always)]
fn aggregate_generic(cols: &Columns<'_>, specs: &[Spec]) -> Result<Vec<Series>, BarError> {
    let n = cols.len_checked()?;
    // Unique specs, finest first, so that a parent always precedes its children.
    let mut nodes: Vec<Spec> = Vec::new();
    for s in specs {
        if !nodes.contains(s) {
            nodes.push(*s);
        }
    }
    nodes.sort_by_key(|s| s.period);
    let parents: Vec<Option<usize>> = nodes.iter().map(|s| parent_of(*s, &nodes)).collect();
    // Capacity for the whole input, if valid; each block is held to the bound of the rows
    // validated so far (see `fold_block`), which holds whatever the rows after them are.
    let first = cols.t.first().copied().unwrap_or_default();
    let span = |end: usize| match end {
        0 => 0,
        _ => cols.t[end - 1].saturating_sub(first).max(0),
    };
    let mut outs: Vec<Series> = nodes
        .iter()
        .map(|s| Series::with_capacity(bar_bound(n, span(n), s.period)))
        .collect();
    let mut accs: Vec<Accumulator> = nodes
        .iter()
        .map(|s| Accumulator::new(s.period, s.offset))
        .collect();
    let mut marks = vec![0usize; nodes.len()];
    let mut validator = Validator::new(1);
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK).min(n);
        validator.check_block(cols, start, end)?;
        let block = cols.slice(start, end);
        let bounds = (end, span(end));
        fold_block(
            &block, bounds, &parents, &mut accs, &mut outs, &mut marks, false,
        );
        start = end;
    }
    let rest = cols.slice(n, n);
    fold_block(
        &rest,
        (n, span(n)),
        &parents,
        &mut accs,
        &mut outs,
        &mut marks,
        true,
    );
    let mut first_use: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut result: Vec<Series> = Vec::with_capacity(specs.len());
    for spec in specs {
        let at = nodes.iter().position(|x| x == spec).unwrap_or_default();
        match first_use[at] {
            Some(j) => result.push(result[j].clone()),
            None => {
                first_use[at] = Some(result.len());
                result.push(std::mem::take(&mut outs[at]));
            }
        }
    }
    Ok(result)
}

/// Most bars that rows spanning `span` ns (ascending) can make in buckets of `period`: one per
/// row, and one per period of the span plus both partial ends.
fn bar_bound(rows: usize, span: i64, period: i64) -> usize {
    rows.min((span / period) as usize + 2)
}

/// Fold one block of rows into the root timeframes, then fold each root's new bars into the
/// timeframes nested in it, and so on down (nodes are ordered parents first). The same tight
/// run-by-run loop serves every level, and a block's new bars are still in cache. `last`
/// closes every partial bar (end of input). `validated` is (rows, span) of the input up to the
/// end of this block: every row so far has passed validation, so `bar_bound` of them bounds
/// each timeframe's bars so far, whatever comes after (the capacity planned from the last row
/// before validation may be short if that row is wrong: then the columns grow, never overflow).
#[inline(always)]
fn fold_block(
    block: &Columns<'_>,
    validated: (usize, i64),
    parents: &[Option<usize>],
    accs: &mut [Accumulator],
    outs: &mut [Series],
    marks: &mut [usize],
    last: bool,
) {
    for (mark, out) in marks.iter_mut().zip(outs.iter()) {
        *mark = out.len();
    }
    let (rows, span) = validated;
    for k in 0..accs.len() {
        let (done, rest) = outs.split_at_mut(k);
        let out = &mut rest[0];
        let input = match parents[k] {
            None => *block,
            // A parent has a shorter period, hence a lower index: it is in `done`.
            Some(p) => done[p].columns_from(marks[p]),
        };
        let acc = &mut accs[k];
        let max_new = bar_bound(rows, span, acc.period).saturating_sub(out.len());
        out.append(
            max_new,
            #[inline(always)]
            |slots| {
                acc.fold(&input, slots);
                if last {
                    if let Some(b) = acc.take() {
                        slots.push(b.t, b.o, b.h, b.l, b.c, b.v);
                    }
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;

    /// The rule itself, row by row: each row's bucket `t - (t - offset) mod period`, a bar per
    /// bucket in order, first/max/min/last/sum.
    fn naive(cols: &Columns<'_>, spec: Spec) -> Series {
        let mut out = Series::default();
        for i in 0..cols.t.len() {
            let t = cols.t[i];
            let label = t - (t - spec.offset).rem_euclid(spec.period);
            let k = out.len();
            if k > 0 && out.t[k - 1] == label {
                out.h[k - 1] = out.h[k - 1].max(cols.h[i]);
                out.l[k - 1] = out.l[k - 1].min(cols.l[i]);
                out.c[k - 1] = cols.c[i];
                out.v[k - 1] += cols.v[i];
            } else {
                out.push(label, cols.o[i], cols.h[i], cols.l[i], cols.c[i], cols.v[i]);
            }
        }
        out
    }

    struct Rows {
        t: Vec<i64>,
        o: Vec<f64>,
        h: Vec<f64>,
        l: Vec<f64>,
        v: Vec<i64>,
    }

    impl Rows {
        /// Rows at the given minutes, prices from a small deterministic generator.
        fn at_minutes(minutes: impl Iterator<Item = i64>) -> Self {
            let t: Vec<i64> = minutes.map(|m| m * MIN).collect();
            let n = t.len();
            let o: Vec<f64> = (0..n)
                .map(|i| 4000.0 + ((i * 7919) % 41) as f64 * 0.25)
                .collect();
            let h = (0..n)
                .map(|i| o[i] + ((i * 31) % 5) as f64 * 0.25)
                .collect();
            let l = (0..n)
                .map(|i| o[i] - ((i * 17) % 7) as f64 * 0.25)
                .collect();
            let v = (0..n as i64).map(|i| (i * 13) % 29).collect();
            Self { t, o, h, l, v }
        }

        fn cols(&self) -> Columns<'_> {
            Columns {
                t: &self.t,
                o: &self.o,
                h: &self.h,
                l: &self.l,
                c: &self.o,
                v: &self.v,
            }
        }
    }

    fn spec(minutes: i64, offset: i64) -> Spec {
        Spec {
            period: minutes * MIN,
            offset: offset * MIN,
        }
    }

    #[test]
    fn every_path_of_the_run_search_equals_the_rule() {
        // Regular stretches (the guessed run length holds) between gaps of every size (inside a
        // bucket, at its boundary, across many buckets), runs longer than a block.
        let mut minutes = Vec::new();
        let (mut m, mut seed) = (-3_000_017i64, 0x2545_f491_4f6c_dd1d_u64);
        for _ in 0..30_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            m += match seed % 1000 {
                0..=2 => 1440 * 3 + 61,
                3..=9 => 61,
                10..=59 => 1 + (seed >> 20) as i64 % 11,
                _ => 1,
            };
            minutes.push(m);
        }
        let rows = Rows::at_minutes(minutes.into_iter());
        let cols = rows.cols();
        let specs = [
            spec(1, 0),
            spec(2, 1),
            spec(5, 0),
            spec(7, 3),
            spec(15, 0),
            spec(60, 30),
            spec(240, 0),
            spec(1440, 1020),
            spec(10_080, 0),
        ];
        let together = aggregate(&cols, &specs).unwrap_or_default();
        for (spec, series) in specs.iter().zip(&together) {
            assert_eq!(series, &naive(&cols, *spec), "{spec:?}");
        }
    }

    #[test]
    fn every_row_its_own_bucket_fills_the_planned_capacity() {
        // One bar per row: as many as the capacity planned from the row count.
        let rows = Rows::at_minutes((0..5_000).map(|k| 3 + 7 * k));
        let cols = rows.cols();
        let out = aggregate(&cols, &[spec(5, 0)]).unwrap_or_default();
        assert_eq!(out[0].len(), 5_000);
        assert_eq!(out[0], naive(&cols, spec(5, 0)));
    }

    #[test]
    fn a_wrong_row_after_the_first_block_is_an_error_not_an_overflow() {
        // The capacity is planned from the first and last rows before validation: here the last
        // row is before the first, so the plan is tiny, while the first block is valid and folds
        // into hundreds of bars before validation reaches the wrong row.
        let mut rows = Rows::at_minutes(0..5_000);
        rows.t[3_000] = i64::MIN;
        for t in &mut rows.t[3_001..] {
            *t -= 1 << 62;
        }
        let cols = rows.cols();
        let err = aggregate(&cols, &[spec(5, 0), spec(15, 0)]).err();
        assert_eq!(err.map(|e| (e.field, e.index)), Some(("t", 3_000)));
    }

    #[test]
    fn nested_timeframes_equal_each_computed_alone() {
        // Irregular minutes: gaps, an hour's break, a weekend.
        let mut t = Vec::new();
        let mut m = 7i64;
        for i in 0..20_000i64 {
            m += match i % 997 {
                0 => 61,
                500 => 2 * 1440 + 61,
                _ if i % 13 == 0 => 3,
                _ => 1,
            };
            t.push(m * MIN);
        }
        let o: Vec<f64> = (0..t.len())
            .map(|i| 4000.0 + ((i * 7919) % 41) as f64 * 0.25)
            .collect();
        let h: Vec<f64> = o.iter().map(|x| x + 0.5).collect();
        let l: Vec<f64> = o.iter().map(|x| x - 0.75).collect();
        let v: Vec<i64> = (0..t.len() as i64).map(|i| i % 17).collect();
        let cols = Columns {
            t: &t,
            o: &o,
            h: &h,
            l: &l,
            c: &o,
            v: &v,
        };
        let spec = |minutes: i64, offset: i64| Spec {
            period: minutes * MIN,
            offset: offset * MIN,
        };
        let specs = [
            spec(5, 0),
            spec(15, 0),
            spec(60, 0),
            spec(1440, 1380),
            spec(7, 0),
            spec(60, 30),
            spec(5, 0),
        ];
        let together = aggregate(&cols, &specs).unwrap_or_default();
        assert_eq!(together.len(), specs.len());
        for (spec, series) in specs.iter().zip(&together) {
            let alone = aggregate(&cols, &[*spec]).unwrap_or_default();
            assert_eq!(alone.len(), 1);
            assert_eq!(series, &alone[0]);
            assert!(!series.is_empty());
        }
    }
}
