//! Formats other than JSON Lines.

#[allow(unused_imports)]
use super::*;

pub async fn csv_datasets_round_trip_rows_and_report_ragged_ones(fx: Fx) {
    let v = vault(&fx, 256);
    let spec: DatasetSpec =
        serde_json::from_value(serde_json::json!({"name": "rows", "format": "csv"})).unwrap();
    let d = v.svc.create_dataset(&v.p, &ctx(), spec).await.unwrap();
    let mut v1 = String::from("id,prompt,label\n");
    for i in 0..300 {
        v1.push_str(&format!("{i},\"question {i}, with a comma\",ok\n"));
    }
    v1.push_str("300,\"two\nlines and \"\"quotes\"\"\",ok\n");
    let r1 = push(&v, &d, v1.as_bytes(), 100).await.unwrap();
    assert_eq!(r1.stats.records, 301);
    assert_eq!(export(&v, &d, None).await.unwrap(), v1.as_bytes());
    let d = v.svc.get_dataset(&v.p, d.id).await.unwrap();
    assert_eq!(d.schema["fields"]["prompt"], "string");
    let q = ListQuery {
        page: 1,
        limit: 1,
        ..Default::default()
    };
    let (_, last) = v
        .svc
        .records(
            &v.p,
            &ctx(),
            &d,
            None,
            &ListQuery {
                page: 301,
                ..q.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(last.items[0].data.get()).unwrap(),
        serde_json::json!({"id": "300", "prompt": "two\nlines and \"quotes\"", "label": "ok"})
    );

    // One row edited: little is stored again.
    let v2 = v1.replace(
        "7,\"question 7, with a comma\",ok",
        "7,\"question 7, edited\",bad",
    );
    let r2 = push(&v, &d, v2.as_bytes(), 4096).await.unwrap();
    assert_eq!(r2.stats.reused_records, 300);
    assert_eq!(export(&v, &d, None).await.unwrap(), v2.as_bytes());

    // Records appended as JSON become rows under the header.
    let a = v
        .svc
        .append(
            &v.p,
            &ctx(),
            &d,
            None,
            None,
            &[serde_json::json!({"id": 301, "prompt": "x,y", "label": null})],
        )
        .await
        .unwrap();
    assert_eq!(a.stats.records, 302);
    let all = export(&v, &d, None).await.unwrap();
    assert!(
        all.ends_with(b"301,\"x,y\",\n"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    let bad = v
        .svc
        .append(
            &v.p,
            &ctx(),
            &d,
            None,
            None,
            &[serde_json::json!({"nope": 1})],
        )
        .await
        .unwrap_err();
    assert!(matches!(bad, CoreError::Invalid { .. }), "{bad:?}");

    // A ragged row is reported with its line; nothing is committed.
    let e = push(&v, &d, b"id,prompt,label\n1,a,b\n2,c\n3,d,e,f\n", 7)
        .await
        .unwrap_err();
    match e {
        CoreError::Unprocessable { code, details, .. } => {
            assert_eq!(code, "INVALID_RECORDS");
            let lines: Vec<u64> = details["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["line"].as_u64().unwrap())
                .collect();
            assert_eq!(lines, vec![3, 4]);
        }
        e => panic!("{e:?}"),
    }
    let e = push(&v, &d, b"", 7).await.unwrap_err();
    assert!(e.to_string().contains("header"), "{e}");
    let e = push(&v, &d, b"id,id\n1,2\n", 7).await.unwrap_err();
    assert!(matches!(e, CoreError::Unprocessable { .. }), "{e:?}");
    let parquet: DatasetSpec =
        serde_json::from_value(serde_json::json!({"name": "pq", "format": "parquet"})).unwrap();
    assert!(matches!(
        v.svc.create_dataset(&v.p, &ctx(), parquet).await,
        Err(CoreError::Unprocessable {
            code: "FORMAT_NOT_SUPPORTED",
            ..
        })
    ));
}

crate::conformance!(csv_datasets_round_trip_rows_and_report_ragged_ones,);
