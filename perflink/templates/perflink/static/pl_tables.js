// perflink report pages: make the tables frame_html marked (data-pl-table="interactive")
// searchable, sortable and paginated with DataTables. The bundle (from the itables package)
// is inlined in the page as a data: URL behind the import map entry "perflink-datatables", so
// nothing is fetched over the network. Cells keep perflink's own formatting; a cell's
// data-order attribute (raw number, ISO period, severity rank) is what its column sorts by.
import DataTable from "perflink-datatables";

const options = JSON.parse(document.getElementById("pl-datatables-options").textContent);
const tables = [];
DataTable.ext.errMode = "throw"; // never an alert() box: a table that fails stays static

for (const table of document.querySelectorAll('table[data-pl-table="interactive"]')) {
  // Numbers sort by their data-order value; periods and severities by their data-order key
  // as text (a severity rank must not be taken for a number). Other columns are left to
  // DataTables' type detection ("12.3%" and "1,234.5" written as text still sort as numbers).
  const numeric = [];
  const keyed = [];
  table.querySelectorAll("thead th").forEach((th, i) => {
    if (th.dataset.plSort === "num") numeric.push(i);
    else if (th.dataset.plSort === "key") keyed.push(i);
  });
  try {
    tables.push(
      new DataTable(table, {
        pageLength: options.pageLength,
        lengthMenu: [10, options.pageLength, 100, { label: options.all, value: -1 }],
        order: [], // keep the order perflink wrote (e.g. by money at stake) until a click
        autoWidth: false,
        columnDefs: [
          { targets: numeric, type: "num" },
          { targets: keyed, type: "string" },
        ],
        language: options.language,
      }),
    );
  } catch (err) {
    table.classList.add("pl-static"); // show every row of the plain table (perflink.css)
    console.error("perflink: table left static:", err);
  }
}

// Print every row (of the current search), not just the page on screen; restore afterwards.
// An appendix table (shown with appendix=True) prints as a pointer line: left as it is.
const saved = new Map();
function showAll() {
  for (const dt of tables) {
    if (!saved.has(dt) && !dt.table().node().closest(".pl-appendix")) {
      saved.set(dt, dt.page.len());
      dt.page.len(-1).draw(false);
    }
  }
}
function restore() {
  for (const [dt, len] of saved) dt.page.len(len).draw(false);
  saved.clear();
}
window.addEventListener("beforeprint", showAll);
window.addEventListener("afterprint", restore);
window.matchMedia("print").addEventListener("change", (e) => (e.matches ? showAll() : restore()));
document.documentElement.dataset.plTables = String(tables.length);
