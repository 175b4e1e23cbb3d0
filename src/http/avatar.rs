//! Generated avatars: the person's initials on a colour picked from the user
//! id, as SVG. Used when an account has no avatar of its own.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::AppError;

pub async fn avatar(State(state): State<Arc<AppState>>, Path(user_id): Path<String>) -> Response {
    let user_id = user_id.trim_end_matches(".svg").to_string();
    match state.authority.user(user_id.clone()).await {
        Ok(Some(user)) => (
            [
                (http::header::CONTENT_TYPE, "image/svg+xml"),
                (http::header::CACHE_CONTROL, "public, max-age=300"),
            ],
            initials_svg(&user.user_id, &user.name),
        )
            .into_response(),
        Ok(None) => AppError::NotFound(format!("no user {user_id}")).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Up to two initials: the first letters of the first two words, or the
/// first character for a name without spaces (as for Chinese names).
pub fn initials(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let picked: String = match words.as_slice() {
        [] => String::new(),
        [one] => one
            .chars()
            .take(if one.is_ascii() { 2 } else { 1 })
            .collect(),
        [first, second, ..] => first
            .chars()
            .take(1)
            .chain(second.chars().take(1))
            .collect(),
    };
    picked.to_uppercase()
}

pub fn initials_svg(user_id: &str, name: &str) -> String {
    const COLOURS: [&str; 8] = [
        "#1e88e5", "#43a047", "#e53935", "#8e24aa", "#fb8c00", "#00897b", "#3949ab", "#6d4c41",
    ];
    let hash = user_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let colour = COLOURS[hash as usize % COLOURS.len()];
    let text = escape(&initials(name));
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"128\" height=\"128\" viewBox=\"0 0 128 128\">\
         <rect width=\"128\" height=\"128\" rx=\"64\" fill=\"{colour}\"/>\
         <text x=\"64\" y=\"64\" dy=\".35em\" text-anchor=\"middle\" font-family=\"sans-serif\" \
         font-size=\"52\" fill=\"#fff\">{text}</text></svg>"
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_of_names() {
        assert_eq!(initials("Ada Lovelace"), "AL");
        assert_eq!(initials("ada"), "AD");
        assert_eq!(initials("张三"), "张");
        assert_eq!(initials("  "), "");
        assert!(initials_svg("u1", "<b>").contains("&lt;B"));
    }
}
