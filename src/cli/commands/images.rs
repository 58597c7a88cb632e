//! `rrun images`: the stored images as a podman-style table, JSON, or ids only.

use std::io::Write as _;

use rrun::image::error::ImageError;
use rrun::image::name::Reference;
use rrun::image::store::{store_name, ImageSummary, Store};

use crate::cli::args::{Format, Globals, ImagesArgs};

/// Run the command.
pub fn run(globals: &Globals, args: ImagesArgs) -> anyhow::Result<()> {
    let images = match Store::open_existing(&globals.root) {
        Ok(store) => store.images()?,
        // Nothing was ever stored: an empty listing, and nothing created.
        Err(ImageError::NoStore { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for image in &images {
            writeln!(out, "{}", &image.id[..12])?;
        }
    } else {
        match args.format {
            Format::Json => {
                serde_json::to_writer_pretty(&mut out, &images)?;
                writeln!(out)?;
            }
            Format::Table => write_images(&mut out, &images, chrono::Utc::now())?,
        }
    }
    out.flush()?;
    Ok(())
}

/// The table: one row per name (one `<none>` row for an image without one).
fn write_images(
    out: &mut impl std::io::Write,
    images: &[ImageSummary],
    now: chrono::DateTime<chrono::Utc>,
) -> std::io::Result<()> {
    let header = [
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "ENCRYPTED",
    ];
    let mut rows = Vec::new();
    for image in images {
        let names: Vec<(String, String)> = if image.names.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            image.names.iter().map(|n| split_name(n)).collect()
        };
        for (repository, tag) in names {
            rows.push(vec![
                repository,
                tag,
                image.id[..12].to_string(),
                image
                    .created
                    .as_deref()
                    .map_or_else(|| "unknown".into(), |c| created_ago(c, now)),
                human_size(image.size),
                if image.encrypted { "yes" } else { "no" }.into(),
            ]);
        }
    }
    super::write_table(out, &header, &rows)
}

/// REPOSITORY and TAG of a stored name; names that are not image names show whole as a tag.
fn split_name(name: &str) -> (String, String) {
    match name.parse::<Reference>() {
        Ok(r) if store_name(&r) == name => (r.name(), r.tag().unwrap_or("<none>").to_string()),
        _ => ("<none>".into(), name.to_string()),
    }
}

/// "5 minutes ago", as podman prints CREATED.
fn created_ago(created: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let Ok(then) = chrono::DateTime::parse_from_rfc3339(created) else {
        return "unknown".into();
    };
    let secs = (now - then.with_timezone(&chrono::Utc)).num_seconds();
    if secs < 0 {
        return "in the future".into();
    }
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match secs {
        0 => "Less than a second ago".into(),
        s if s < 60 => plural(s, "second"),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 86_400 => plural(s / 3600, "hour"),
        s if s < 14 * 86_400 => plural(s / 86_400, "day"),
        s if s < 60 * 86_400 => plural(s / (7 * 86_400), "week"),
        s if s < 730 * 86_400 => plural(s / (30 * 86_400), "month"),
        s => plural(s / (365 * 86_400), "year"),
    }
}

/// A size in SI units with three significant digits ("4.26 MB"), as podman prints SIZE.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 999.5 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 99.95 {
        0
    } else if value >= 9.995 {
        1
    } else {
        2
    };
    let mut text = format!("{value:.digits$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_like_podman() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1_240), "1.24 kB");
        assert_eq!(human_size(4_500_000), "4.5 MB");
        assert_eq!(human_size(42_640_000), "42.6 MB");
        assert_eq!(human_size(999_999), "1 MB");
        let now = chrono::DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(created_ago("2024-05-01T11:55:00Z", now), "5 minutes ago");
        assert_eq!(created_ago("2024-05-01T11:00:00Z", now), "1 hour ago");
        assert_eq!(created_ago("2024-04-10T12:00:00Z", now), "3 weeks ago");
        assert_eq!(created_ago("2022-05-01T12:00:00Z", now), "2 years ago");
        assert_eq!(created_ago("yesterday", now), "unknown");
    }

    #[test]
    fn names_split_into_repository_and_tag() {
        assert_eq!(
            split_name("docker.io/library/busybox:latest"),
            ("docker.io/library/busybox".into(), "latest".into())
        );
        assert_eq!(
            split_name("127.0.0.1:5000/app:1"),
            ("127.0.0.1:5000/app".into(), "1".into())
        );
        assert_eq!(split_name("latest"), ("<none>".into(), "latest".into()));
    }
}
