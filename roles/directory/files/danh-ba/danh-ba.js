// Managed by congvu-mail (Ansible). The directory page: shows the rows the
// page carries as data (#du-lieu), and searches them as the user types.
// Every word typed must appear in a row. Rows carry their text already folded
// on the server (filter_plugins vn_ascii: no diacritics, đ -> d, lower case);
// the query is folded the same way here, so "nguyen" finds "Nguyễn".
// At most LIMIT rows are drawn: drawing tens of thousands of table rows is
// what makes a page slow, searching them is not.
'use strict';
(function () {
  var LIMIT = 500;

  function fold(text) {
    return text.replace(/đ/g, 'd').replace(/Đ/g, 'D')
      .normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
  }

  function cell(row, text) {
    var td = document.createElement('td');
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function draw(table, rows) {
    var body = document.createElement('tbody');
    for (var i = 0; i < rows.length && i < LIMIT; i++) {
      var data = rows[i];
      var tr = document.createElement('tr');
      if (data[4]) { tr.className = 'to-chuc'; }
      cell(tr, data[0]);
      var link = document.createElement('a');
      link.href = 'mailto:' + data[1];
      link.textContent = data[1];
      cell(tr, '').appendChild(link);
      cell(tr, data[2]);
      cell(tr, data[3]);
      body.appendChild(tr);
    }
    table.replaceChild(body, table.tBodies[0]);
  }

  document.addEventListener('DOMContentLoaded', function () {
    var rows = JSON.parse(document.getElementById('du-lieu').textContent);
    var table = document.getElementById('danh-ba');
    var input = document.getElementById('tim');
    var result = document.getElementById('ket-qua');
    var timer = null;

    function search() {
      var words = fold(input.value).split(/\s+/).filter(Boolean);
      var found = words.length ? rows.filter(function (row) {
        return words.every(function (word) { return row[5].indexOf(word) !== -1; });
      }) : rows;
      draw(table, found);
      var message = words.length ? 'Tìm thấy ' + found.length + ' / ' + rows.length + ' địa chỉ.' : '';
      if (found.length > LIMIT) {
        message += ' Hiển thị ' + LIMIT + ' địa chỉ đầu tiên: gõ thêm để thu hẹp.';
      }
      result.textContent = message;
    }

    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(search, 100);
    });
    search();
  });
}());
