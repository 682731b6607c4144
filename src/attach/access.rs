//! Who may join a run, and who may act in it, decided on the kernel's word: the
//! peer's uid read from the socket (`SO_PEERCRED`), its login and groups from the
//! system's databases. A name a client puts in its hello is only a display name.
//!
//! Without `[operators]` a run is its own user's (and root's, who can read
//! everything anyway). With `[operators] group`, members of that OS group may
//! connect; `operate` lists the logins who may act, everyone else observes. The
//! run's own user may always act: its own console could anyway.

use crate::identity;
use ferry_core::runbook::Operators;

/// The rule of one run.
#[derive(Debug, Clone)]
pub struct Access {
    /// The run's own (effective) uid.
    pub owner: u32,
    /// `[operators] group`, resolved: its name and gid.
    pub group: Option<(String, u32)>,
    /// `[operators] operate`; `None` when every admitted user may act.
    pub operate: Option<Vec<String>>,
}

/// What the rule says of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// May connect, and act when it asks to (`--operate`).
    Operator,
    /// May connect and watch; its decisions are refused.
    Observer,
    /// May not connect: why, in words.
    Refused(String),
}

impl Access {
    /// The run's rule: its own user, and `[operators]` when the runbook has it.
    /// An `[operators] group` the system does not know is an error.
    pub fn for_run(ops: Option<&Operators>) -> Result<Access, String> {
        let owner = identity::euid();
        let Some(ops) = ops else {
            return Ok(Access {
                owner,
                group: None,
                operate: None,
            });
        };
        let group = match &ops.group {
            Some(g) => match identity::group_gid(g) {
                Some(gid) => Some((g.clone(), gid)),
                None => {
                    return Err(format!(
                    "[operators] group `{g}` does not exist on this host (see `getent group {g}`)"
                ))
                }
            },
            None => None,
        };
        Ok(Access {
            owner,
            group,
            operate: ops.operate.clone(),
        })
    }

    /// The rule for a peer with `uid` (login `login`, from the user database).
    pub fn admit(&self, uid: u32, login: Option<&str>) -> Admission {
        let own = uid == self.owner;
        let member = match &self.group {
            Some((_, gid)) => identity::in_group(uid, login, *gid),
            None => false,
        };
        if !(own || uid == 0 || member) {
            let who = match login {
                Some(l) => format!("{l} (uid {uid})"),
                None => format!("uid {uid}"),
            };
            let owner =
                identity::login_name(self.owner).unwrap_or_else(|| format!("uid {}", self.owner));
            return Admission::Refused(match &self.group {
                Some((g, _)) => format!(
                    "{who} is not in the OS group `{g}` that this run's [operators] opens it to (nor its own user {owner}, nor root)"
                ),
                None => format!(
                    "{who} may not attach: this run is {owner}'s (and root's); a runbook's [operators] group opens a run to others"
                ),
            });
        }
        if own {
            return Admission::Operator;
        }
        match &self.operate {
            None => Admission::Operator,
            Some(list) if login.is_some_and(|l| list.iter().any(|o| o == l)) => Admission::Operator,
            Some(_) => Admission::Observer,
        }
    }

    /// The socket's mode: 0660 with the group when `[operators] group` opens
    /// it, else 0600.
    pub fn mode(&self) -> u32 {
        if self.group.is_some() {
            0o660
        } else {
            0o600
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(group: Option<(&str, u32)>, operate: Option<&[&str]>) -> Access {
        Access {
            owner: 4_000_000_001,
            group: group.map(|(g, id)| (g.to_string(), id)),
            operate: operate.map(|l| l.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn without_operators_only_the_owner_and_root_come_in() {
        let a = rule(None, None);
        assert_eq!(a.admit(4_000_000_001, None), Admission::Operator);
        assert_eq!(a.admit(0, Some("root")), Admission::Operator);
        assert!(matches!(
            a.admit(4_000_000_002, Some("mallory")),
            Admission::Refused(why) if why.contains("mallory (uid 4000000002) may not attach")
        ));
        assert_eq!(a.mode(), 0o600);
    }

    /// root's primary group is 0: a member of group `root` (gid 0).
    #[test]
    fn operate_decides_who_acts_among_the_members() {
        let a = rule(Some(("root", 0)), Some(&["alice"]));
        assert_eq!(a.mode(), 0o660);
        assert_eq!(a.admit(0, Some("root")), Admission::Observer);
        assert_eq!(a.admit(4_000_000_001, None), Admission::Operator);
        let b = rule(Some(("root", 0)), Some(&["root"]));
        assert_eq!(b.admit(0, Some("root")), Admission::Operator);
    }

    #[test]
    fn an_unknown_group_is_an_error() {
        let ops = Operators {
            group: Some("no-such-group-ferry".into()),
            operate: None,
        };
        let e = Access::for_run(Some(&ops)).expect_err("no such group");
        assert!(e.contains("`no-such-group-ferry` does not exist"), "{e}");
    }
}
