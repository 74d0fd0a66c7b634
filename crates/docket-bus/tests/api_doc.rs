//! `docs/api.md` documents every command's subject and owning service, every queue group,
//! header and error code: checked here so that it cannot fall behind the catalogue.

use docket_bus::catalogue::spec;
use docket_bus::headers as h;
use docket_bus::{codes, subject, Service};
use docket_domain::CommandKind;

fn api_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_api_doc_lists_every_command_with_its_subject_and_service() {
    let doc = api_md();
    for kind in CommandKind::ALL {
        let row = format!(
            "| `{}` | `{}` | {} |",
            kind.name(),
            subject(*kind),
            spec(*kind).service.name()
        );
        assert!(doc.contains(&row), "docs/api.md needs the row {row}");
    }
}

#[test]
fn the_api_doc_lists_every_queue_group_header_and_code() {
    let doc = api_md();
    for service in Service::ALL {
        for name in [service.queue_group(), service.micro_name()] {
            assert!(doc.contains(&format!("`{name}`")), "{name}");
        }
    }
    for header in [
        h::CONTENT_TYPE,
        h::ACTOR,
        h::IDEMPOTENCY_KEY,
        h::AFTER,
        h::STATUS,
        h::NATS_SERVICE_ERROR,
        h::NATS_SERVICE_ERROR_CODE,
    ] {
        assert!(doc.contains(&format!("`{header}`")), "{header}");
    }
    for code in codes::ALL {
        assert!(
            doc.contains(&format!("| `{code}` |")),
            "docs/api.md needs the code {code}"
        );
    }
}
