// Small DOM helpers shared by the views: elements, tables, figures with their raw numbers.

export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data")) node.setAttribute(key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(id) {
  return document.getElementById(id);
}

// A headline figure: its label, its formatted value, and the raw number in data-value.
export function kpi(figure, label, value, format, note = null) {
  return h("div", { class: "kpi", dataFigure: figure, dataValue: value ?? "" },
    h("div", { class: "kpi-label" }, label),
    h("div", { class: "kpi-value" }, format(value)),
    note ? h("div", { class: "kpi-note" }, note) : null);
}

// A table: columns [{key, label, format?, numeric?, cell?}], rows of objects.
export function table(node, columns, rows, rowAttributes = () => ({})) {
  node.replaceChildren(
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.numeric ? "num" : null, scope: "col" }, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", rowAttributes(row), columns.map((c) => {
      const value = row[c.key];
      const content = c.cell ? c.cell(row) : c.format ? c.format(value) : value ?? "–";
      return h("td", { class: c.numeric ? "num" : null, dataKey: c.key, dataValue: typeof value === "number" ? value : null }, content);
    })))),
  );
}

export function showEmpty(id, message) {
  const node = $(id);
  node.hidden = !message;
  node.textContent = message || "";
}
