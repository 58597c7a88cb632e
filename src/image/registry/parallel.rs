//! Run one job per item on a bounded number of threads (parallel layer downloads and blob
//! uploads); the first failure cancels the jobs not yet started and tells running ones to stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::image::error::{ImageError, Result};

/// Most threads one transfer uses.
const MAX_JOBS: usize = 16;

/// Run `work` on every item with at most `jobs` at a time, in item order as far as threads
/// allow. `work` gets a flag that turns true when another job failed; `failed` hears of each
/// real failure. Returns the results (in completion order) or the first error.
pub fn for_each<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T, &AtomicBool) -> Result<R> + Sync,
    failed: impl Fn(&T, &ImageError) + Sync,
) -> Result<Vec<R>> {
    let next = Mutex::new(0usize);
    let done = Mutex::new(Vec::new());
    let failure: Mutex<Option<ImageError>> = Mutex::new(None);
    let cancel = AtomicBool::new(false);
    let workers = jobs.clamp(1, MAX_JOBS).min(items.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                let i = {
                    let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                    *n += 1;
                    *n - 1
                };
                let Some(item) = items.get(i) else { return };
                match work(item, &cancel) {
                    Ok(r) => done.lock().unwrap_or_else(|e| e.into_inner()).push(r),
                    Err(e) => {
                        cancel.store(true, Ordering::Relaxed);
                        if !matches!(e, ImageError::Cancelled) {
                            failed(item, &e);
                        }
                        let mut slot = failure.lock().unwrap_or_else(|e| e.into_inner());
                        if slot.is_none() || matches!(*slot, Some(ImageError::Cancelled)) {
                            *slot = Some(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok(done.into_inner().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_everything_or_reports_the_first_real_failure() {
        let items: Vec<u32> = (0..20).collect();
        let mut out = for_each(&items, 3, |i, _| Ok(i * 2), |_, _| {}).unwrap();
        out.sort();
        assert_eq!(out, (0..20).map(|i| i * 2).collect::<Vec<_>>());

        let heard = Mutex::new(Vec::new());
        let err = for_each(
            &items,
            4,
            |i, cancel| {
                if *i == 5 {
                    return Err(ImageError::malformed("item 5", "bad"));
                }
                if cancel.load(Ordering::Relaxed) {
                    return Err(ImageError::Cancelled);
                }
                Ok(*i)
            },
            |i, _| heard.lock().unwrap().push(*i),
        )
        .unwrap_err();
        assert!(matches!(err, ImageError::Malformed { .. }), "{err}");
        assert_eq!(
            *heard.lock().unwrap(),
            vec![5],
            "cancelled jobs are not failures"
        );
        assert!(for_each(&Vec::<u32>::new(), 3, |i, _| Ok(*i), |_, _| {})
            .unwrap()
            .is_empty());
    }
}
