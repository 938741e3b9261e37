//! Secrets out of everything printed: a URL's query string (WeCom bot webhooks carry `?key=…`, the WeChat API
//! `?access_token=…`) and its credentials are replaced before a URL reaches a log line, an error message or a
//! dead letter's `last_error`.

/// `url` with its password and query replaced by `***` (the host and path stay: they are what an operator
/// needs to find the failing destination). Text that does not parse as a URL is returned without what follows
/// a `?`.
pub fn url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            strip(&mut parsed);
            parsed.to_string()
        }
        Err(_) => url.split('?').next().unwrap_or_default().to_owned(),
    }
}

/// `error` with the URL it names redacted as in [`url`].
pub fn reqwest_error(mut error: reqwest::Error) -> reqwest::Error {
    if let Some(url) = error.url_mut() {
        strip(url);
    }
    error
}

fn strip(url: &mut reqwest::Url) {
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        url.set_query(Some("***"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_passwords_are_hidden_hosts_and_paths_kept() {
        assert_eq!(
            url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=s3cret"),
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?***"
        );
        assert_eq!(url("http://user:pw@h:9/p"), "http://user:***@h:9/p");
        assert_eq!(url("not a url?token=x"), "not a url");
    }
}
