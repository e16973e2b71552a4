// Managed by congvu-mail (Ansible). The directory page's search: every word
// typed must appear in a row. Rows carry their text already folded on the
// server (filter_plugins vn_ascii: no diacritics, đ -> d, lower case); the
// query is folded the same way here, so "nguyen" finds "Nguyễn".
'use strict';
(function () {
  function fold(text) {
    return text.replace(/đ/g, 'd').replace(/Đ/g, 'D')
      .normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
  }
  document.addEventListener('DOMContentLoaded', function () {
    var input = document.getElementById('tim');
    var result = document.getElementById('ket-qua');
    var rows = Array.prototype.slice.call(document.querySelectorAll('#danh-ba tbody tr'));
    var keys = rows.map(function (row) { return row.getAttribute('data-k'); });
    var timer = null;
    function search() {
      var words = fold(input.value).split(/\s+/).filter(Boolean);
      var shown = 0;
      for (var i = 0; i < rows.length; i++) {
        var match = words.every(function (word) { return keys[i].indexOf(word) !== -1; });
        rows[i].hidden = !match;
        if (match) { shown++; }
      }
      result.textContent = words.length ? 'Tìm thấy ' + shown + ' / ' + rows.length + ' địa chỉ.' : '';
    }
    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(search, rows.length > 2000 ? 150 : 0);
    });
    if (input.value) { search(); }
  });
}());
