// gensr-bench leaderboard: sortable tables and the paradigm filter. No dependencies.
(function () {
  "use strict";

  // A cell's sort key: its data-sort attribute (else its text); null when empty.
  function sortKey(cell, type) {
    if (!cell) return null;
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent.trim();
    if (raw === "") return null;
    if (type === "number") {
      var value = parseFloat(raw);
      return isNaN(value) ? null : value;
    }
    return raw.toLowerCase();
  }

  function compare(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function sortTable(table, index, th) {
    var type = th.getAttribute("data-type") || "text";
    var current = th.getAttribute("aria-sort");
    var direction;
    if (current === "ascending") {
      direction = "descending";
    } else if (current === "descending") {
      direction = "ascending";
    } else {
      // First click: best first for metrics where higher is better, else ascending.
      direction = th.getAttribute("data-better") === "higher" ? "descending" : "ascending";
    }
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].hasAttribute("aria-sort")) heads[i].setAttribute("aria-sort", "none");
    }
    th.setAttribute("aria-sort", direction);
    var sign = direction === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = sortKey(r1.cells[index], type);
      var b = sortKey(r2.cells[index], type);
      if (a === null || b === null) return (a === null) - (b === null); // empty cells last
      return sign * compare(a, b);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      var button = th.querySelector("button");
      if (button) button.addEventListener("click", function () { sortTable(table, index, th); });
    });
  });

  var filter = document.getElementById("paradigm-filter");
  if (filter) {
    filter.addEventListener("change", function () {
      var wanted = filter.value;
      Array.prototype.forEach.call(document.querySelectorAll("tr[data-paradigm]"), function (row) {
        row.hidden = wanted !== "" && row.getAttribute("data-paradigm") !== wanted;
      });
    });
  }
})();
