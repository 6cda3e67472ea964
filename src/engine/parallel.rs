//! Data-parallel work over model replicas (`--devices 0,1,…`): one thread per replica pulls
//! the next job from a shared queue, and every result comes back to the calling thread, which
//! alone writes results.jsonl. Replicas that finish early take more jobs, so a slower device
//! (or a batch of long prompts) does not hold the others up.

use crate::Result;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// Run `work(replica, job)` for every job, spread over the replicas, and hand each output to
/// `sink(replica index, job index, output)` on the calling thread in the order jobs finish.
/// The first error (from `work` or `sink`) stops the other replicas after their current job
/// and is returned. With one replica everything runs on the calling thread, in job order.
pub fn run_on_replicas<M: Sync, J: Sync, R: Send>(
    replicas: &[M],
    jobs: &[J],
    work: impl Fn(&M, &J) -> Result<R> + Sync,
    mut sink: impl FnMut(usize, usize, R) -> Result<()>,
) -> Result<()> {
    if let [replica] = replicas {
        for (j, job) in jobs.iter().enumerate() {
            sink(0, j, work(replica, job)?)?;
        }
        return Ok(());
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Bounded: finished outputs wait in memory only while the writer is busy.
        let (tx, rx) = mpsc::sync_channel::<(usize, usize, Result<R>)>(replicas.len());
        for (r, replica) in replicas.iter().enumerate() {
            let (tx, next, stop, work) = (tx.clone(), &next, &stop, &work);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(j) else { break };
                    let out = work(replica, job);
                    let failed = out.is_err();
                    // The receiver is gone only when the writer has stopped on an error.
                    if tx.send((r, j, out)).is_err() || failed {
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (r, j, out) in rx {
            if let Err(e) = out.and_then(|o| sink(r, j, o)) {
                stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn every_job_runs_once_and_reaches_the_sink() {
        let replicas = [10u64, 20, 30];
        let jobs: Vec<u64> = (0..50).collect();
        let mut seen = vec![None; jobs.len()];
        let mut per_replica = [0; 3];
        run_on_replicas(
            &replicas,
            &jobs,
            |_, &j| Ok(j * j),
            |r, j, out| {
                assert!(seen[j].replace(out).is_none(), "job {j} twice");
                per_replica[r] += 1;
                Ok(())
            },
        )
        .unwrap();
        let squares: Vec<Option<u64>> = jobs.iter().map(|j| Some(j * j)).collect();
        assert_eq!(seen, squares);
        assert_eq!(per_replica.iter().sum::<usize>(), 50);
    }

    #[test]
    fn the_first_error_stops_the_run() {
        let jobs: Vec<usize> = (0..1000).collect();
        for replicas in [&[()][..], &[(), ()][..]] {
            let mut sunk = 0;
            let err = run_on_replicas(
                replicas,
                &jobs,
                |_, &j| {
                    if j == 3 {
                        Err(Error::Usage("job 3 failed".into()))
                    } else {
                        Ok(j)
                    }
                },
                |_, _, _| {
                    sunk += 1;
                    Ok(())
                },
            )
            .unwrap_err();
            assert!(err.to_string().contains("job 3 failed"));
            assert!(sunk < 1000, "the run went on after the error");
        }
        // An error of the writer stops the workers too.
        let err = run_on_replicas(
            &[(), ()],
            &jobs,
            |_, &j| Ok(j),
            |_, _, _| Err(Error::Usage("disk full".into())),
        )
        .unwrap_err();
        assert!(err.to_string().contains("disk full"));
    }
}
