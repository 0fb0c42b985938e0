//! Device, browser and OS from the user agent, with woothee (a parser with
//! a shared, multi-language test suite), mapped to the vocabulary the
//! dashboards use. The old front end reported Edge as Chrome, Android as
//! Linux and iOS as macOS; the server's reading replaces the client's.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    /// `desktop`, `mobile`, `tablet` or `other`.
    pub device_type: Option<String>,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
}

fn known(value: &str) -> Option<String> {
    (!value.is_empty() && value != "UNKNOWN").then(|| value.to_owned())
}

pub fn parse(user_agent: &str) -> Device {
    let Some(result) = woothee::parser::Parser::new().parse(user_agent) else {
        return Device::default();
    };
    let os = match result.os {
        "iPhone" | "iPad" | "iPod" => Some("iOS".to_owned()),
        "Mac OSX" => Some("macOS".to_owned()),
        os if os.starts_with("Windows") => Some("Windows".to_owned()),
        os => known(os),
    };
    let device_type = match (result.category, result.os) {
        (_, "iPad") => "tablet",
        ("pc", _) => "desktop",
        ("smartphone" | "mobilephone", _) => "mobile",
        _ => "other",
    };
    Device {
        device_type: Some(device_type.to_owned()),
        browser: known(result.name),
        browser_version: known(result.version),
        os,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(ua: &str) -> (String, String, String) {
        let d = parse(ua);
        (
            d.device_type.unwrap_or_default(),
            d.browser.unwrap_or_default(),
            d.os.unwrap_or_default(),
        )
    }

    #[test]
    fn edge_is_edge_not_chrome() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
        assert_eq!(
            device(ua),
            ("desktop".into(), "Edge".into(), "Windows".into())
        );
        assert_eq!(parse(ua).browser_version.as_deref(), Some("131.0.0.0"));
    }

    #[test]
    fn android_is_android_not_linux() {
        let ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
        assert_eq!(
            device(ua),
            ("mobile".into(), "Chrome".into(), "Android".into())
        );
    }

    #[test]
    fn iphone_is_ios_not_macos() {
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(device(ua), ("mobile".into(), "Safari".into(), "iOS".into()));
    }

    #[test]
    fn ipad_is_an_ios_tablet() {
        let ua = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(device(ua), ("tablet".into(), "Safari".into(), "iOS".into()));
    }

    #[test]
    fn desktop_safari_is_macos() {
        let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
        assert_eq!(
            device(ua),
            ("desktop".into(), "Safari".into(), "macOS".into())
        );
        assert_eq!(parse(ua).browser_version.as_deref(), Some("17.5"));
    }

    #[test]
    fn firefox_is_firefox() {
        let ua =
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:132.0) Gecko/20100101 Firefox/132.0";
        assert_eq!(
            device(ua),
            ("desktop".into(), "Firefox".into(), "macOS".into())
        );
        assert_eq!(parse(ua).browser_version.as_deref(), Some("132.0"));
    }

    #[test]
    fn chrome_on_ios_is_chrome_on_ios() {
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1";
        assert_eq!(device(ua), ("mobile".into(), "Chrome".into(), "iOS".into()));
    }

    #[test]
    fn an_unreadable_agent_yields_nothing() {
        assert_eq!(parse("???").browser, None);
    }
}
