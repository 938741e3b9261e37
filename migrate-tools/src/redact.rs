//! Credentials never reach logs or errors: every URL shown to a human goes through [`url`].

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`; anything unparsable is hidden entirely.
pub fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.contains('@') {
            "<redacted url>".to_owned()
        } else {
            url.to_owned()
        };
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let slash = if rest.contains('/') { "/" } else { "" };
    // Query strings may carry passwords too (`?password=`); drop them.
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    format!("{scheme}://{user}:***@{host}{slash}{path}")
}

/// Replaces any occurrence of the secret parts of `secret_url` in `text` (driver errors sometimes echo them).
pub fn text(text: &str, secret_url: &str) -> String {
    let mut out = text.replace(secret_url, &url(secret_url));
    if let Some(password) = password(secret_url).filter(|p| p.len() >= 3) {
        out = out.replace(&password, "***");
    }
    out
}

fn password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    userinfo.split_once(':').map(|(_, p)| p.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hides_passwords() {
        assert_eq!(super::url("mysql://u:s3cret@h:3306/db?x=1"), "mysql://u:***@h:3306/db");
        assert_eq!(super::url("sqlite://a.db"), "sqlite://a.db");
        let t = super::text("Access denied for u:s3cret", "mysql://u:s3cret@h/db");
        assert!(!t.contains("s3cret"), "{t}");
    }
}
