//! Who runs ferry, as the kernel says: the effective uid of this process (the
//! run's own console), or the uid of a socket's peer (`SO_PEERCRED`, an attached
//! console), with its login name asked of the system's user database through
//! `getpwuid_r`, so users from LDAP or SSSD (which `/etc/passwd` does not list)
//! resolve as well as local ones. Environment variables (`USER`, `SUDO_USER`)
//! are never asked: anyone can set them.

use ferry_core::vocab::Actor;
use std::ffi::CStr;

/// The effective uid of this process: whose rights it acts with (after `sudo -u
/// bob`, bob's; after `sudo`, root's).
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// This process's login name: the user database's name for its effective uid,
/// or `uid<N>` when the database has none.
pub fn my_login() -> String {
    let uid = euid();
    login_name(uid).unwrap_or_else(|| format!("uid{uid}"))
}

/// The actor of this process's own console: its effective uid and login, shown
/// as `display` when one was given (`--operator`), else as the login.
pub fn local_actor(display: Option<&str>, host: &str) -> Actor {
    let uid = euid();
    let login = login_name(uid);
    let shown = display
        .map(str::to_string)
        .or_else(|| login.clone())
        .unwrap_or_else(|| format!("uid{uid}"));
    Actor::named(shown, host).with_uid(uid, login)
}

/// The gid of group `name`, asked of the system's group database (`getgrnam_r`,
/// so LDAP and SSSD groups resolve); `None` when there is no such group.
pub fn group_gid(name: &str) -> Option<u32> {
    let cname = std::ffi::CString::new(name).ok()?;
    let mut size = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: an all-zero group is a valid value to be overwritten.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer refers to live memory of the stated size for the call.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if rc != 0 || found.is_null() {
            return None;
        }
        return Some(grp.gr_gid);
    }
}

/// The name of group `gid`, from the system's group database.
pub fn group_name(gid: u32) -> Option<String> {
    let mut size = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: an all-zero group is a valid value to be overwritten.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer refers to live memory of the stated size for the call.
        let rc =
            unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if rc != 0 || found.is_null() || grp.gr_name.is_null() {
            return None;
        }
        // SAFETY: on success gr_name points at a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(grp.gr_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

/// Whether user `uid` (login `login`) belongs to group `gid`: as its primary
/// group, or as a member listed by the group database (`getgrouplist`).
pub fn in_group(uid: u32, login: Option<&str>, gid: u32) -> bool {
    let primary = primary_gid(uid);
    if primary == Some(gid) {
        return true;
    }
    let (Some(login), Some(primary)) = (login, primary) else {
        return false;
    };
    let Ok(cname) = std::ffi::CString::new(login) else {
        return false;
    };
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; usize::try_from(n).unwrap_or(64)];
        let mut count = n;
        // SAFETY: `groups` holds `count` entries; the name is NUL-terminated.
        let rc =
            unsafe { libc::getgrouplist(cname.as_ptr(), primary, groups.as_mut_ptr(), &mut count) };
        if rc < 0 {
            if count > n && n < 65536 {
                n = count;
                continue;
            }
            return false;
        }
        groups.truncate(usize::try_from(count).unwrap_or(0));
        return groups.contains(&gid);
    }
}

/// The primary gid of `uid`, from the user database.
fn primary_gid(uid: u32) -> Option<u32> {
    let mut size = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: an all-zero passwd is a valid value to be overwritten.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live memory of the stated size for the call.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if rc != 0 || found.is_null() {
            return None;
        }
        return Some(pwd.pw_gid);
    }
}

/// The login name of `uid`, or `None` when the user database has no entry for it.
pub fn login_name(uid: libc::uid_t) -> Option<String> {
    let mut size = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: an all-zero passwd is a valid value to be overwritten.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live memory of the stated size for the call.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points at a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same name `id -un` prints for this process's uid.
    #[test]
    fn the_current_uid_resolves_as_id_says() {
        let out = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap_or_else(|e| panic!("id: {e}"));
        let expected = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        assert_eq!(login_name(uid).as_deref(), Some(expected.as_str()));
    }

    /// The console's own actor carries the effective uid, whatever name it shows.
    #[test]
    fn the_local_actor_is_the_effective_uid() {
        let a = local_actor(Some("Alice Smith"), "h");
        assert_eq!(a.uid, Some(euid()));
        assert_eq!(a.operator, "Alice Smith");
        assert_eq!(a.login, login_name(euid()));
        assert_eq!(local_actor(None, "h").operator, my_login());
    }

    #[test]
    fn root_is_in_its_group_and_groups_resolve() {
        assert_eq!(group_gid("root"), Some(0));
        assert_eq!(group_gid("no-such-group-ferry"), None);
        assert!(in_group(0, Some("root"), 0));
    }

    #[test]
    fn root_is_root_and_an_unused_uid_is_nobody() {
        assert_eq!(login_name(0).as_deref(), Some("root"));
        assert_eq!(login_name(4_000_000_000), None);
    }
}
