//! Progress of a run, shown on stderr: a bar on a terminal (simulated time written as
//! time, `1m30s / 6m`), and a line every 10 s of wall time elsewhere (CI logs, pipes).
//!
//! The display runs on an OS thread of its own, outside the simulation, and only reads
//! what the simulation publishes once a simulated second ([`ProgressState`]): showing or
//! hiding it changes nothing the simulation does.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubesim_model::time::{go_duration, SimTime};

/// How often a line is printed when stderr is not a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(10);
/// How often the terminal bar is redrawn.
const BAR_EVERY: Duration = Duration::from_millis(100);

/// What the simulation publishes: the simulated time reached and the pods Running.
#[derive(Debug, Default)]
pub struct ProgressState {
    simulated_ms: AtomicU64,
    running: AtomicU64,
    done: AtomicBool,
}

impl ProgressState {
    pub fn publish(&self, now: SimTime, running: u64) {
        self.simulated_ms.store(now.as_millis(), Ordering::Relaxed);
        self.running.store(running, Ordering::Relaxed);
    }

    fn read(&self) -> (SimTime, u64) {
        (SimTime(self.simulated_ms.load(Ordering::Relaxed)), self.running.load(Ordering::Relaxed))
    }
}

/// One progress line: `simulated 1m30s of 6m (3.4x real time), 4500 pods Running`.
pub fn line(simulated: SimTime, duration: SimTime, wall: Duration, running: u64) -> String {
    let ratio = simulated.as_secs_f64() / wall.as_secs_f64().max(1e-3);
    format!(
        "simulated {} of {} ({ratio:.1}x real time), {running} pods Running",
        go_duration(simulated.as_duration()),
        go_duration(duration.as_duration()),
    )
}

/// A running display; [`Progress::finish`] stops it.
pub struct Progress {
    state: Arc<ProgressState>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts the display for a run of `duration`.
    pub fn start(name: &str, duration: SimTime) -> Progress {
        let state = Arc::new(ProgressState::default());
        let s = state.clone();
        let name = name.to_string();
        let terminal = std::io::stderr().is_terminal();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || if terminal { bar(&s, &name, duration) } else { lines(&s, &name, duration) })
            .ok();
        Progress { state, thread }
    }

    pub fn state(&self) -> Arc<ProgressState> {
        self.state.clone()
    }

    /// Stops the display (the bar is cleared).
    pub fn finish(mut self) {
        self.state.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sleeps `total` in short steps, returning early when the run is done.
fn wait(state: &ProgressState, total: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < total {
        if state.done.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(total));
    }
    !state.done.load(Ordering::Relaxed)
}

fn lines(state: &ProgressState, name: &str, duration: SimTime) {
    let started = Instant::now();
    while wait(state, LINE_EVERY) {
        let (simulated, running) = state.read();
        let text = line(simulated, duration, started.elapsed(), running);
        let _ = writeln!(std::io::stderr(), "{name}: {text}");
    }
}

fn bar(state: &ProgressState, name: &str, duration: SimTime) {
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(duration.as_millis().max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:40}] {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    while wait(state, BAR_EVERY) {
        let (simulated, running) = state.read();
        bar.set_position(simulated.as_millis());
        bar.set_message(line(simulated, duration, started.elapsed(), running));
    }
    bar.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_simulated_time_as_time() {
        let l = line(SimTime(90_000), SimTime(360_000), Duration::from_secs(30), 4500);
        assert_eq!(l, "simulated 1m30s of 6m0s (3.0x real time), 4500 pods Running");
    }
}
