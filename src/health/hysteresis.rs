//! Rise/fall hysteresis for one check.
//!
//! The first result sets the state (there is nothing to smooth yet). After that the
//! state flips only after `fall` failures in a row (up → down) or `rise` successes in a
//! row (down → up); a result that agrees with the state resets the streak.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hysteresis {
    state: Option<bool>,
    streak: u32,
    rise: u32,
    fall: u32,
}

impl Hysteresis {
    pub fn new(rise: u32, fall: u32) -> Self {
        Hysteresis { state: None, streak: 0, rise: rise.max(1), fall: fall.max(1) }
    }

    /// Starts from a known state (restored from the state file).
    pub fn with_state(mut self, up: bool) -> Self {
        self.state = Some(up);
        self
    }

    /// New thresholds (after a reload); the state and streak carry on.
    pub fn set_thresholds(&mut self, rise: u32, fall: u32) {
        self.rise = rise.max(1);
        self.fall = fall.max(1);
    }

    /// `None` until the first result.
    pub fn state(&self) -> Option<bool> {
        self.state
    }

    /// Feeds one result; returns the new state if it changed.
    pub fn observe(&mut self, ok: bool) -> Option<bool> {
        match self.state {
            None => {
                self.state = Some(ok);
                self.streak = 0;
                Some(ok)
            }
            Some(cur) if cur == ok => {
                self.streak = 0;
                None
            }
            Some(_) => {
                self.streak += 1;
                let needed = if ok { self.rise } else { self.fall };
                if self.streak >= needed {
                    self.state = Some(ok);
                    self.streak = 0;
                    Some(ok)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a sequence (`+` success, `-` failure) and returns the state after each.
    fn run(rise: u32, fall: u32, seq: &str) -> String {
        let mut h = Hysteresis::new(rise, fall);
        seq.chars()
            .map(|c| {
                h.observe(c == '+');
                match h.state() {
                    Some(true) => 'U',
                    Some(false) => 'D',
                    None => '?',
                }
            })
            .collect()
    }

    #[test]
    fn sequences() {
        let cases = [
            // rise, fall, results, states
            (2, 3, "+", "U"),
            (2, 3, "-", "D"),
            (2, 3, "+---", "UUUD"),
            (2, 3, "+--+---", "UUUUUUD"),
            (2, 3, "+---++", "UUUDDU"),
            (2, 3, "+---+-++", "UUUDDDDU"),
            (1, 1, "+-+-", "UDUD"),
            (3, 2, "--+++", "DDDDU"),
            (3, 2, "-++-+++", "DDDDDDU"),
        ];
        for (rise, fall, seq, want) in cases {
            assert_eq!(run(rise, fall, seq), want, "rise {rise} fall {fall}: {seq}");
        }
    }

    #[test]
    fn restored_state_needs_the_full_streak() {
        let mut h = Hysteresis::new(2, 3).with_state(true);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), None);
        assert_eq!(h.observe(false), Some(false));
    }
}
