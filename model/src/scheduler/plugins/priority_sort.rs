//! PrioritySort (plugins/queuesort/priority_sort.go): the activeQ's order. A pod with a
//! higher priority goes first; between equal priorities, the one that entered the queue
//! (or last failed) earlier. The queue keeps its activeQ in this order
//! ([`crate::scheduler::queue::SchedulingQueue`]).

use std::cmp::Ordering;

use crate::time::SimTime;

pub const NAME: &str = "PrioritySort";

/// `PrioritySort.Less` as an ordering: `Less` when (priority, timestamp) `a` goes first.
pub fn less(a: (i32, SimTime), b: (i32, SimTime)) -> Ordering {
    b.0.cmp(&a.0).then(a.1.cmp(&b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    // queuesort/priority_sort_test.go TestLess.
    #[test]
    fn table() {
        let t0 = SimTime::from_secs(0);
        let t1 = SimTime::from_secs(1);
        assert_eq!(less((100, t0), (50, t1)), Ordering::Less, "p1.priority greater than p2.priority");
        assert_eq!(less((50, t0), (100, t1)), Ordering::Greater, "p1.priority less than p2.priority");
        assert_eq!(
            less((100, t0), (100, t1)),
            Ordering::Less,
            "equal priority. p1 is added to schedulingQ earlier than p2"
        );
        assert_eq!(
            less((100, t1), (100, t0)),
            Ordering::Greater,
            "equal priority. p2 is added to schedulingQ earlier than p1"
        );
    }
}
