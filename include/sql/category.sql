-- Category (kid) of a batch of vids (CONTRACT §2). {placeholders} is replaced by "%s,%s,..." (one per vid);
-- the vids themselves are always passed as query parameters. A vid without a row, or whose kid is NULL,
-- has no category ("nokid").
SELECT a.vid, b.kid
FROM vinfo a
LEFT JOIN vsort b ON a.vsortid = b.id
WHERE a.vid IN ({placeholders})
