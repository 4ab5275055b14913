//! kiln's axum example: a page rendered from typed asset handles, and the assets served from the
//! binary (release) or from OUT_DIR (debug) by kiln_serve.
//!
//! `cargo run -p kiln-example-axum -- --port 8000`, then open http://127.0.0.1:8000/.

use axum::Router;
use axum::response::Html;
use axum::routing::get;

/// The generated module: `assets::css::APP_CSS`, `assets::ASSETS`, ...
mod assets {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// The page: a stylesheet and a module script with their integrity, and a `<picture>` with the
/// photo's AVIF and WebP variants and its own format at every width.
fn page() -> String {
    let css = &assets::css::APP_CSS;
    let js = &assets::js::MAIN_JS;
    let photo = &assets::img::ROCKET_JPG;
    let image = photo.image.expect("kiln knows the photo's size");
    let sizes = format!("(max-width: {w}px) 100vw, {w}px", w = image.width);
    let sources: String = photo
        .modern_formats()
        .into_iter()
        .map(|ty| {
            format!(
                r#"<source type="{ty}" srcset="{}" sizes="{sizes}">"#,
                photo.srcset(ty)
            )
        })
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kiln + axum</title>
<meta name="kiln-manifest" content="/static/manifest.json">
<link rel="icon" href="{icon}" type="image/svg+xml">
<link rel="stylesheet" href="{css_url}" integrity="{css_sri}">
<script type="module" src="{js_url}" integrity="{js_sri}"></script>
</head>
<body>
<div class="logo"></div>
<h1>kiln + axum</h1>
<p id="greeting">(the module script did not run)</p>
<picture>{sources}<img src="{img_url}" srcset="{img_srcset}" sizes="{sizes}" width="{width}" height="{height}" alt="A rocket launch"></picture>
</body>
</html>
"#,
        icon = assets::img::LOGO_SVG.url,
        css_url = css.url,
        css_sri = css.integrity,
        js_url = js.url,
        js_sri = js.integrity,
        img_url = photo.url,
        img_srcset = photo.srcset(photo.content_type),
        width = image.width,
        height = image.height,
    )
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { Html(page()) }))
        .nest_service("/static", assets::ASSETS.service())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut port = 8000u16;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| std::io::Error::other("--port takes a number"))?;
            }
            other => return Err(std::io::Error::other(format!("unknown argument {other}"))),
        }
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    axum::serve(listener, app()).await
}
