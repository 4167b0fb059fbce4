//! Formats other than JSON Lines.

#[allow(unused_imports)]
use super::*;
use llmgov_core::vault::model::DatasetFormat;

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
    let a = append(
        &v,
        &d,
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
    let bad = append(&v, &d, &[serde_json::json!({"nope": 1})])
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
}

/// A typed table in several row groups, Snappy-compressed (what most writers produce),
/// with row `edited` changed.
fn parquet_file(rows: usize, edited: Option<usize>) -> (Vec<arrow_array::RecordBatch>, Vec<u8>) {
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{
        ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, StructArray,
        TimestampMicrosecondArray,
    };
    use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
    let meta = Fields::from(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("temperature", DataType::Float64, true),
    ]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("prompt", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            true,
        ),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new("meta", DataType::Struct(meta.clone()), true),
    ]));
    let mut batches = vec![];
    for start in (0..rows).step_by(64) {
        let ids: Vec<usize> = (start..(start + 64).min(rows)).collect();
        let prompt = |i: usize| match edited {
            Some(e) if e == i => Some(format!("edited prompt {i}")),
            _ if i % 11 == 3 => None,
            _ => Some(format!("prompt number {i}, with \"quotes\" and é")),
        };
        let mut tags = ListBuilder::new(StringBuilder::new());
        for i in &ids {
            for t in 0..(i % 3) {
                tags.values().append_value(format!("t{t}"));
            }
            tags.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(ids.iter().map(|i| *i as i64))),
            Arc::new(StringArray::from_iter(ids.iter().map(|i| prompt(*i)))),
            Arc::new(Float64Array::from_iter(
                ids.iter().map(|i| (i % 7 != 0).then_some(*i as f64 / 8.0)),
            )),
            Arc::new(BooleanArray::from_iter(
                ids.iter().map(|i| Some(i % 2 == 0)),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    ids.iter()
                        .map(|i| 1_790_000_000_000_000 + *i as i64 * 1_000_001),
                )
                .with_timezone("+00:00"),
            ),
            Arc::new(tags.finish()),
            Arc::new(StructArray::new(
                meta.clone(),
                vec![
                    Arc::new(StringArray::from_iter_values(
                        ids.iter().map(|i| format!("model-{}", i % 4)),
                    )) as ArrayRef,
                    Arc::new(Float64Array::from_iter(
                        ids.iter().map(|i| Some(*i as f64 / 100.0)),
                    )),
                ],
                None,
            )),
        ];
        batches.push(arrow_array::RecordBatch::try_new(schema.clone(), columns).unwrap());
    }
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_max_row_group_row_count(Some(100))
        .build();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    (batches, out)
}

fn read_parquet(bytes: Vec<u8>) -> Vec<arrow_array::RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(
        bytes,
    ))
    .unwrap()
    .build()
    .unwrap()
    .map(|b| b.unwrap())
    .collect()
}

fn concat(batches: &[arrow_array::RecordBatch]) -> arrow_array::RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), batches).unwrap()
}

pub async fn parquet_datasets_keep_their_schema_and_convert_on_export(fx: Fx) {
    let v = vault(&fx, 4096);
    let table: DatasetSpec =
        serde_json::from_value(serde_json::json!({"name": "table", "format": "parquet"})).unwrap();
    let d = v.svc.create_dataset(&v.p, &ctx(), table).await.unwrap();
    let (batches, file) = parquet_file(300, None);
    let r1 = push(&v, &d, &file, 1000).await.unwrap();
    assert_eq!(r1.stats.records, 300);
    // The export is a Parquet file with the same schema and values, in order.
    let back = read_parquet(export(&v, &d, None).await.unwrap());
    assert_eq!(concat(&back), concat(&batches));
    let d = v.svc.get_dataset(&v.p, d.id).await.unwrap();
    assert!(d.schema["fields"].get("prompt").is_some(), "{}", d.schema);
    let (_, page) = v
        .svc
        .records(
            &v.p,
            &ctx(),
            &d,
            None,
            &ListQuery {
                page: 4,
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let rec: serde_json::Value = serde_json::from_str(page.items[0].data.get()).unwrap();
    assert_eq!(rec["id"], 3);
    assert_eq!(rec["prompt"], serde_json::Value::Null);
    assert_eq!(rec["meta"]["model"], "model-3");

    // One row edited: only it is stored again.
    let (batches2, file2) = parquet_file(300, Some(150));
    let r2 = push(&v, &d, &file2, 64 << 10).await.unwrap();
    assert_eq!((r2.stats.records, r2.stats.reused_records), (300, 299));
    assert_eq!(
        concat(&read_parquet(export(&v, &d, None).await.unwrap())),
        concat(&batches2)
    );
    // Earlier versions still export as they were.
    assert_eq!(
        concat(&read_parquet(
            export(&v, &d, Some(r1.commit.id.as_str())).await.unwrap()
        )),
        concat(&batches)
    );

    // Other formats on the way out.
    let conv = |f| {
        let v = &v;
        let d = &d;
        async move {
            let mut rx = v
                .svc
                .export(&v.p, &ctx(), d, None, Some(f))
                .await
                .unwrap()
                .rx;
            let mut out = Vec::new();
            while let Some(c) = rx.recv().await {
                out.extend_from_slice(&c.unwrap());
            }
            String::from_utf8(out).unwrap()
        }
    };
    let jsonl = conv(DatasetFormat::Jsonl).await;
    assert_eq!(jsonl.lines().count(), 300);
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first["tags"], serde_json::json!([]));
    let csv = conv(DatasetFormat::Csv).await;
    assert!(
        csv.starts_with("id,prompt,score,ok,at,tags,meta\n"),
        "{}",
        &csv[..80]
    );

    // Appended records must fit the schema.
    let ok = append(
        &v,
        &d,
        &[serde_json::json!({"id": 300, "prompt": "new", "ok": true})],
    )
    .await
    .unwrap();
    assert_eq!(ok.stats.records, 301);
    assert_eq!(
        concat(&read_parquet(export(&v, &d, None).await.unwrap())).num_rows(),
        301
    );
    let bad = append(&v, &d, &[serde_json::json!({"id": "three hundred"})])
        .await
        .unwrap_err();
    assert!(matches!(bad, CoreError::Invalid { .. }), "{bad:?}");

    // Not Parquet, or cut short: a clear error and nothing committed.
    let before = v
        .svc
        .log(&d, None, &ListQuery::default())
        .await
        .unwrap()
        .total;
    for body in [
        b"id,prompt\n1,a\n".to_vec(),
        file[..file.len() - 100].to_vec(),
        vec![],
    ] {
        let e = push(&v, &d, &body, 1000).await.unwrap_err();
        assert!(
            matches!(
                e,
                CoreError::Unprocessable {
                    code: "INVALID_PARQUET",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    assert_eq!(commit_count(&v, &d).await, before);

    // A JSON Lines dataset exports as Parquet with a schema inferred from its records.
    let j = v
        .svc
        .create_dataset(&v.p, &ctx(), spec("chats"))
        .await
        .unwrap();
    push(&v, &j, &lines(50, |_| None), 4096).await.unwrap();
    let mut rx = v
        .svc
        .export(&v.p, &ctx(), &j, None, Some(DatasetFormat::Parquet))
        .await
        .unwrap()
        .rx;
    let mut out = Vec::new();
    while let Some(c) = rx.recv().await {
        out.extend_from_slice(&c.unwrap());
    }
    let t = concat(&read_parquet(out));
    assert_eq!(t.num_rows(), 50);
    assert_eq!(t.schema().field(0).name(), "id");
}

crate::vault_conformance!(
    csv_datasets_round_trip_rows_and_report_ragged_ones,
    parquet_datasets_keep_their_schema_and_convert_on_export,
);
