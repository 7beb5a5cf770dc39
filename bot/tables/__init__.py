"""Tables operators bring from other systems (shop order exports, CRM contact lists), read
the same way for every importer:

- `read`: a CSV file in any usual encoding or an `.xlsx` workbook → rows that know where
  they are (`file:LINE`, `file:sheet!row`), within size bounds;
- `spec`: what an importer expects (`Schema` of `FieldSpec`s, and `Preset`s: the column
  names of the exports it knows, recognised by `detect` headers);
- `mapping`: the header row found and recognised, every column mapped or reported,
  each row read into typed values with `file:LINE: column: reason` for bad cells;
- `mapfile`: the operator's own column names and values (`sop/columns.yaml`, `--mapping`);
- `values`: the cell parsers (amounts, times, yes/no, counts, phone numbers, choices).

An importer (`bot.orders.importer`) declares its schema and presets, then:
`table = read_table(path, shown)`, and for each sheet `layout = find_header(schema, sheet,
presets, mappings)`, `record = layout.read(row, sheet, tz)`.
"""
