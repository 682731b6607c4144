//! Who runs ferry: the login name of a uid, asked of the system's user database
//! through `getpwuid_r`, so users from LDAP or SSSD (which `/etc/passwd` does not
//! list) resolve as well as local ones.

use std::ffi::CStr;

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

    #[test]
    fn root_is_root_and_an_unused_uid_is_nobody() {
        assert_eq!(login_name(0).as_deref(), Some("root"));
        assert_eq!(login_name(4_000_000_000), None);
    }
}
